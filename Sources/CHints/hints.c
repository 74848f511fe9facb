// CHints is header-only (static inline functions); SwiftPM wants one source file.
#include "ovl_hints.h"
