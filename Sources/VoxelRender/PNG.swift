import CPNG
import Foundation
import VoxelIO

// PNG files through libpng's simplified API (png_image_*): no setjmp; errors come back as a return
// value of 0 with the reason in `png_image.message`.

extension Image {
    /// The image encoded as PNG bytes (8 bits per channel, RGB or RGBA as the image).
    /// - Throws: `RenderError` with libpng's message when encoding fails.
    public func pngData() throws -> Data {
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        image.width = UInt32(width)
        image.height = UInt32(height)
        image.format = format == .rgba ? UInt32(PNG_FORMAT_RGB | PNG_FORMAT_FLAG_ALPHA) : UInt32(PNG_FORMAT_RGB)
        let stride = Int32(width * format.rawValue)
        // One encoding into a buffer of the largest size the PNG can take. (Asking for the size
        // first, with no buffer, compressed the image twice: a tenth of `voxplain demo`'s time.)
        var size = vx_png_size_max(&image)
        var out = Data(count: size)
        let ok = out.withUnsafeMutableBytes { dst in
            pixels.withUnsafeBytes { px in
                png_image_write_to_memory(&image, dst.baseAddress, &size, 0, px.baseAddress, stride, nil)
            }
        }
        png_image_free(&image)
        guard ok != 0, size > 0 else { throw RenderError("PNG encoding failed: \(Image.message(&image))") }
        return out.prefix(size)
    }

    /// Writes the image as a PNG file: encoded in memory, written to a temporary file in the same
    /// folder and renamed over `path`, so no half-written file is ever seen.
    /// - Throws: `RenderError` naming `path` when it cannot be encoded or written.
    public func writePNG(to path: String) throws {
        let data = try pngData()
        do {
            try AtomicFile.write(data, to: URL(fileURLWithPath: path))
        } catch {
            throw RenderError("\(path): \(error)")
        }
    }

    /// Reads a PNG file into an RGBA (when it has alpha) or RGB image, 8 bits per channel.
    /// - Throws: `RenderError` naming `path` with libpng's message when it cannot be read.
    public static func readPNG(_ path: String) throws -> Image {
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        guard png_image_begin_read_from_file(&image, path) != 0 else {
            throw RenderError("\(path): cannot read PNG: \(message(&image))")
        }
        let alpha = (image.format & UInt32(PNG_FORMAT_FLAG_ALPHA)) != 0
        image.format = alpha ? UInt32(PNG_FORMAT_RGB | PNG_FORMAT_FLAG_ALPHA) : UInt32(PNG_FORMAT_RGB)
        var out: Image
        do {
            out = try Image(width: Int(image.width), height: Int(image.height), format: alpha ? .rgba : .rgb)
        } catch {
            png_image_free(&image)
            throw RenderError("\(path): \(error)")
        }
        let stride = Int32(out.width * out.format.rawValue)
        let ok = out.pixels.withUnsafeMutableBytes { png_image_finish_read(&image, nil, $0.baseAddress, stride, nil) }
        guard ok != 0 else { throw RenderError("\(path): cannot read PNG: \(message(&image))") }
        return out
    }

    /// libpng's message in `png_image.message` (a fixed-size C array).
    static func message(_ image: inout png_image) -> String {
        withUnsafeBytes(of: &image.message) { raw in
            let bytes = raw.prefix(while: { $0 != 0 })
            return String(decoding: bytes, as: UTF8.self)
        }
    }
}
