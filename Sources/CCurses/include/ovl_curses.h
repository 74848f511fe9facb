// The few ncursesw calls the explorer's terminal front end needs, as plain functions
// (ncurses exposes several of them only as macros, which Swift cannot call).
#ifndef OVL_CURSES_H
#define OVL_CURSES_H

#include <stdint.h>

/// Key codes above the character range, mapped from ncurses' KEY_* values so Swift does
/// not depend on ncurses' numbering.
enum {
    OVL_KEY_NONE = -1,
    OVL_KEY_UP = 0x110000, OVL_KEY_DOWN, OVL_KEY_LEFT, OVL_KEY_RIGHT,
    OVL_KEY_HOME, OVL_KEY_END, OVL_KEY_PGUP, OVL_KEY_PGDN,
    OVL_KEY_BACKSPACE, OVL_KEY_ENTER, OVL_KEY_BTAB, OVL_KEY_RESIZE,
    OVL_KEY_MOUSE, OVL_KEY_DC, OVL_KEY_F1,
};

/// Mouse event kinds reported by ovl_curses_mouse.
enum { OVL_MOUSE_CLICK = 1, OVL_MOUSE_DOUBLE = 2, OVL_MOUSE_WHEEL_UP = 3, OVL_MOUSE_WHEEL_DOWN = 4 };

/// Style bits for ovl_curses_draw: low 4 bits colour pair (0 = default), then attributes.
enum { OVL_STYLE_BOLD = 0x10, OVL_STYLE_REVERSE = 0x20, OVL_STYLE_UNDERLINE = 0x40, OVL_STYLE_DIM = 0x80 };

/// Starts curses mode. Returns 0 on success, -1 when the terminal cannot be used.
int ovl_curses_start(int use_color);
/// Leaves curses mode and restores the terminal. Safe to call more than once.
void ovl_curses_stop(void);
int ovl_curses_active(void);
void ovl_curses_size(int *rows, int *cols);
/// Draws `n` wide characters at (y, x) in one style.
void ovl_curses_draw(int y, int x, const int32_t *chars, int n, int style);
void ovl_curses_clear(void);
void ovl_curses_refresh(void);
/// Waits up to `timeout_ms` (-1: forever) for a key; returns a character, an OVL_KEY_*
/// value, or OVL_KEY_NONE on time-out.
int ovl_curses_getkey(int timeout_ms);
/// Makes a pending or the next ovl_curses_getkey return at once (from any thread);
/// ovl_curses_wake_init sets it up (0 on success).
int ovl_curses_wake_init(void);
void ovl_curses_wake(void);
/// After OVL_KEY_MOUSE: the event's kind and cell. Returns 0 when there is none.
int ovl_curses_mouse(int *kind, int *y, int *x);
/// Whether the terminal can draw line-drawing and block characters (a UTF-8 locale).
int ovl_curses_utf8(void);

/// Installs handlers: SIGTERM and SIGHUP set a flag (ovl_curses_quit_requested); crash
/// signals restore the terminal before the process dies.
void ovl_curses_install_signal_handlers(void);
int ovl_curses_quit_requested(void);

#endif
