#define _XOPEN_SOURCE_EXTENDED 1
#include "ovl_curses.h"

#include <fcntl.h>
#include <langinfo.h>
#include <locale.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include <wchar.h>
#include <ncursesw/curses.h>

static int active = 0;
static int have_color = 0;

int ovl_curses_start(int use_color) {
    setlocale(LC_ALL, "");
    if (initscr() == NULL) return -1;
    active = 1;
    cbreak();
    noecho();
    nonl();
    keypad(stdscr, TRUE);
    curs_set(0);
    set_escdelay(25);
    mousemask(BUTTON1_CLICKED | BUTTON1_DOUBLE_CLICKED | BUTTON1_PRESSED | BUTTON4_PRESSED |
                  BUTTON5_PRESSED, NULL);
    mouseinterval(150);
    have_color = 0;
    if (use_color && has_colors()) {
        start_color();
        use_default_colors();
        // Pairs 1-7: the seven ANSI foreground colours on the default background.
        for (short c = 1; c <= 7; c++) init_pair(c, c, -1);
        // Pair 8: the selection bar.
        init_pair(8, COLOR_BLACK, COLOR_CYAN);
        have_color = 1;
    }
    return 0;
}

void ovl_curses_stop(void) {
    if (!active) return;
    active = 0;
    curs_set(1);
    endwin();
}

int ovl_curses_active(void) { return active; }

void ovl_curses_size(int *rows, int *cols) {
    int r, c;
    getmaxyx(stdscr, r, c);
    *rows = r;
    *cols = c;
}

void ovl_curses_draw(int y, int x, const int32_t *chars, int n, int style) {
    attr_t attrs = A_NORMAL;
    if (style & OVL_STYLE_BOLD) attrs |= A_BOLD;
    if (style & OVL_STYLE_REVERSE) attrs |= A_REVERSE;
    if (style & OVL_STYLE_UNDERLINE) attrs |= A_UNDERLINE;
    if (style & OVL_STYLE_DIM) attrs |= A_DIM;
    short pair = have_color ? (short)(style & 0x0F) : 0;
    wchar_t buf[1024];
    while (n > 0) {
        int k = n < 1023 ? n : 1023;
        for (int i = 0; i < k; i++) buf[i] = (wchar_t)chars[i];
        buf[k] = 0;
        attr_set(attrs, pair, NULL);
        mvaddnwstr(y, x, buf, k);
        x += k;
        chars += k;
        n -= k;
    }
    attr_set(A_NORMAL, 0, NULL);
}

void ovl_curses_clear(void) { erase(); }
void ovl_curses_refresh(void) { refresh(); }

/* A pipe that other threads write a byte to when they have news for the input loop, so
   that a key wait ends at once instead of at its timeout. */
static int wake_pipe[2] = {-1, -1};

int ovl_curses_wake_init(void) {
    if (wake_pipe[0] >= 0) return 0;
    if (pipe(wake_pipe) != 0) return -1;
    for (int i = 0; i < 2; i++) {
        fcntl(wake_pipe[i], F_SETFL, fcntl(wake_pipe[i], F_GETFL) | O_NONBLOCK);
        fcntl(wake_pipe[i], F_SETFD, FD_CLOEXEC);
    }
    return 0;
}

void ovl_curses_wake(void) {
    if (wake_pipe[1] < 0) return;
    char b = 1;
    ssize_t r = write(wake_pipe[1], &b, 1);   /* a full pipe has a wake-up pending already */
    (void)r;
}

static int translate(int r, wint_t ch);

int ovl_curses_getkey(int timeout_ms) {
    wint_t ch;
    int r;
    if (wake_pipe[0] >= 0 && timeout_ms != 0) {
        /* A key ncurses holds already comes first; then wait for the terminal or a
           wake-up, whichever is first. A signal (a resize) ends the wait too: its key
           comes on the next call. */
        timeout(0);
        r = get_wch(&ch);
        if (r != ERR) return translate(r, ch);
        struct pollfd fds[2] = {{STDIN_FILENO, POLLIN, 0}, {wake_pipe[0], POLLIN, 0}};
        if (poll(fds, 2, timeout_ms < 0 ? -1 : timeout_ms) <= 0) return OVL_KEY_NONE;
        if (fds[1].revents & POLLIN) {
            char buf[64];
            while (read(wake_pipe[0], buf, sizeof buf) > 0) {}
        }
        if (!(fds[0].revents & (POLLIN | POLLHUP | POLLERR))) return OVL_KEY_NONE;
    }
    timeout(timeout_ms);
    r = get_wch(&ch);
    return translate(r, ch);
}

static int translate(int r, wint_t ch) {
    if (r == ERR) return OVL_KEY_NONE;
    if (r == KEY_CODE_YES) {
        switch (ch) {
        case KEY_UP: return OVL_KEY_UP;
        case KEY_DOWN: return OVL_KEY_DOWN;
        case KEY_LEFT: return OVL_KEY_LEFT;
        case KEY_RIGHT: return OVL_KEY_RIGHT;
        case KEY_HOME: return OVL_KEY_HOME;
        case KEY_END: return OVL_KEY_END;
        case KEY_PPAGE: return OVL_KEY_PGUP;
        case KEY_NPAGE: return OVL_KEY_PGDN;
        case KEY_BACKSPACE: return OVL_KEY_BACKSPACE;
        case KEY_ENTER: return OVL_KEY_ENTER;
        case KEY_BTAB: return OVL_KEY_BTAB;
        case KEY_RESIZE: return OVL_KEY_RESIZE;
        case KEY_MOUSE: return OVL_KEY_MOUSE;
        case KEY_DC: return OVL_KEY_DC;
        case KEY_F(1): return OVL_KEY_F1;
        default: return OVL_KEY_NONE;
        }
    }
    if (ch == 127 || ch == 8) return OVL_KEY_BACKSPACE;
    if (ch == '\r' || ch == '\n') return OVL_KEY_ENTER;
    return (int)ch;
}

int ovl_curses_mouse(int *kind, int *y, int *x) {
    MEVENT ev;
    if (getmouse(&ev) != OK) return 0;
    *y = ev.y;
    *x = ev.x;
    if (ev.bstate & BUTTON4_PRESSED) *kind = OVL_MOUSE_WHEEL_UP;
    else if (ev.bstate & BUTTON5_PRESSED) *kind = OVL_MOUSE_WHEEL_DOWN;
    else if (ev.bstate & BUTTON1_DOUBLE_CLICKED) *kind = OVL_MOUSE_DOUBLE;
    else *kind = OVL_MOUSE_CLICK;
    return 1;
}

int ovl_curses_utf8(void) {
    const char *cs = nl_langinfo(CODESET);
    return cs && strcmp(cs, "UTF-8") == 0;
}

// Termination and crash signals. SIGTERM and SIGHUP ask the input loop to quit (it
// restores the terminal on its way out); a crash restores the terminal at once and then
// dies of the same signal, so the shell is never left in curses mode.
static volatile sig_atomic_t quit_requested = 0;

static void on_quit_signal(int sig) {
    (void)sig;
    quit_requested = 1;
}

static void on_crash_signal(int sig) {
    if (active) {
        active = 0;
        endwin();
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

void ovl_curses_install_signal_handlers(void) {
    signal(SIGTERM, on_quit_signal);
    signal(SIGHUP, on_quit_signal);
    int crashes[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP};
    for (unsigned i = 0; i < sizeof crashes / sizeof crashes[0]; i++) signal(crashes[i], on_crash_signal);
}

int ovl_curses_quit_requested(void) { return quit_requested != 0; }
