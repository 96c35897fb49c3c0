#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Pictures in a terminal: 24-bit colour half-block characters, two pixel rows per text row.
public enum TerminalView {
    /// The upper half block: its foreground colour paints the upper pixel, its background the lower.
    public static let halfBlock = "\u{2580}"

    /// Text drawing `image`: each character is "▀" with foreground = pixel (x, 2r) and background =
    /// pixel (x, 2r + 1) as `ESC[38;2;R;G;Bm` / `ESC[48;2;R;G;Bm` (sent only when they change along a
    /// row); every line ends with `ESC[0m` and a newline. An odd last row has the default background.
    public static func halfBlocks(_ image: Image) -> String {
        var out = ""
        out.reserveCapacity(image.width * (image.height + 1) / 2 * 24)
        var y = 0
        while y < image.height {
            var fg: RGBA?, bg: RGBA?, bgDefault = false
            for x in 0..<image.width {
                let top = image[x, y]
                if fg != top { out += "\u{1B}[38;2;\(top.r);\(top.g);\(top.b)m"; fg = top }
                if y + 1 < image.height {
                    let bottom = image[x, y + 1]
                    if bg != bottom { out += "\u{1B}[48;2;\(bottom.r);\(bottom.g);\(bottom.b)m"; bg = bottom }
                } else if !bgDefault {
                    out += "\u{1B}[49m"
                    bgDefault = true
                }
                out += halfBlock
            }
            out += "\u{1B}[0m\n"
            y += 2
        }
        return out
    }

    /// The terminal width to draw at: `explicit` when given, else the `COLUMNS` variable, else the
    /// width of the terminal on standard output (ioctl TIOCGWINSZ), else 80.
    public static func columns(explicit: Int?, environment: [String: String]) -> Int {
        if let explicit, explicit > 0 { return explicit }
        if let c = environment["COLUMNS"].flatMap({ Int($0) }), c > 0 { return c }
        return windowSize()?.columns ?? 80
    }

    /// Columns and rows of the terminal on standard output, or nil when it is not a terminal.
    public static func windowSize() -> (columns: Int, rows: Int)? {
        var ws = winsize()
        guard ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &ws) == 0, ws.ws_col > 0 else { return nil }
        return (Int(ws.ws_col), Int(ws.ws_row))
    }

    /// True when file descriptor `fd` is a terminal.
    public static func isTerminal(_ fd: Int32) -> Bool { isatty(fd) == 1 }

    /// The pixel size (mm) that fits a plane into `columns` characters and `rows` text rows (two
    /// pixels each; nil for no height limit): each character cell shows two square pixels.
    public static func pixelMM(layout: PlaneLayout, columns: Int, rows: Int?) -> Double {
        let e = layout.extentMM
        var px = e.width / Double(max(1, columns))
        if let rows { px = max(px, e.height / Double(max(1, 2 * rows))) }
        return px
    }
}

/// A key press in the interactive view.
public enum TerminalKey: Equatable, Sendable {
    case up, down, character(Character), interrupt, escape
    /// The keys in `bytes` as read from a raw-mode terminal: arrows as `ESC [ A`/`ESC [ B` (or
    /// `ESC O A`/`ESC O B`), Ctrl-C as `interrupt`, a lone ESC as `escape`, other bytes as ASCII characters.
    public static func parse(_ bytes: [UInt8]) -> [TerminalKey] {
        var keys: [TerminalKey] = []
        var n = 0
        while n < bytes.count {
            let b = bytes[n]
            if b == 27 {
                if n + 2 < bytes.count, bytes[n + 1] == 91 || bytes[n + 1] == 79 {
                    switch bytes[n + 2] {
                    case 65: keys.append(.up)
                    case 66: keys.append(.down)
                    default: break   // other arrows and function keys are ignored
                    }
                    n += 3
                    continue
                }
                keys.append(.escape)
            } else if b == 3 {
                keys.append(.interrupt)
            } else if b < 128 {
                keys.append(.character(Character(Unicode.Scalar(b))))
            }
            n += 1
        }
        return keys
    }
}

// The handler only calls async-signal-safe functions (tcsetattr, write, _exit); `leaveScreen` is an
// ASCII literal, so `withCString` reads its bytes in place without allocating.
/// The terminal settings saved before raw mode, for the signal handler (which cannot capture).
/// Written only by `RawTerminal.init` before the handler is installed, then only read.
nonisolated(unsafe) private var savedTermios = termios()
/// True once `savedTermios` holds the settings to restore.
nonisolated(unsafe) private var savedTermiosValid = false

/// write(2), under a name that instance methods called `write` do not shadow.
private func writeBytes(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int { write(fd, p, n) }

/// Text that undoes what the interactive view does to the screen: shows the cursor, leaves the
/// alternate screen, resets colours.
let leaveScreen = "\u{1B}[0m\u{1B}[?25h\u{1B}[?1049l"

/// Raw mode on standard input (no echo, no line buffering, no signals from keys), restored on
/// `restore()`, on deinit, and on SIGINT, SIGTERM or SIGHUP (the handler restores the settings,
/// leaves the alternate screen and exits with 128 + signal).
public final class RawTerminal {
    private var active = false

    /// Enters raw mode and the alternate screen, hiding the cursor.
    /// - Throws: `RenderError` when standard input is not a terminal.
    public init() throws {
        guard tcgetattr(STDIN_FILENO, &savedTermios) == 0 else { throw RenderError("view: standard input is not a terminal") }
        savedTermiosValid = true
        var raw = savedTermios
        raw.c_lflag &= ~tcflag_t(ECHO | ICANON | ISIG | IEXTEN)
        raw.c_iflag &= ~tcflag_t(IXON | ICRNL)
        withUnsafeMutableBytes(of: &raw.c_cc) { cc in
            cc[Int(VMIN)] = 1
            cc[Int(VTIME)] = 0
        }
        for s in [SIGINT, SIGTERM, SIGHUP] {
            signal(s) { sig in
                if savedTermiosValid { tcsetattr(STDIN_FILENO, TCSAFLUSH, &savedTermios) }
                leaveScreen.withCString { p in _ = writeBytes(STDOUT_FILENO, p, strlen(p)) }
                _exit(128 + sig)
            }
        }
        guard tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw) == 0 else { throw RenderError("view: cannot set the terminal to raw mode") }
        active = true
        write("\u{1B}[?1049h\u{1B}[?25l")
    }

    /// Writes text to standard output at once (unbuffered).
    public func write(_ text: String) {
        var bytes = Array(text.utf8)
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeMutableBytes { buffer -> Int in
                guard let base = buffer.baseAddress else { return 0 }
                return writeBytes(STDOUT_FILENO, base + done, buffer.count - done)
            }
            if n <= 0 { break }
            done += n
        }
    }

    /// Blocks until keys arrive; nil at end of input.
    public func readKeys() -> [TerminalKey]? {
        var buffer = [UInt8](repeating: 0, count: 32)
        let n = buffer.withUnsafeMutableBytes { read(STDIN_FILENO, $0.baseAddress, $0.count) }
        guard n > 0 else { return nil }
        return TerminalKey.parse(Array(buffer[0..<n]))
    }

    /// Restores the saved settings and the screen (idempotent).
    public func restore() {
        guard active else { return }
        active = false
        write(leaveScreen)
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &savedTermios)
        for s in [SIGINT, SIGTERM, SIGHUP] { signal(s, SIG_DFL) }
    }

    deinit { restore() }
}
