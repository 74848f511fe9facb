import OvlCore
