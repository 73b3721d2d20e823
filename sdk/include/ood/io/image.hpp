#pragma once
// Decoding and encoding of image files: JPEG with libjpeg-turbo (TurboJPEG API), PNG with
// libpng (simplified API). The format is told by the content, not the file name
// (pytorch-ood's sets contain PNGs in folders called "Bmp" and JPEGs named .png).
//
// Decoded images are uint8 tensors [H, W, C], C = 1 (grey), 2 (grey + alpha), 3 (RGB)
// or 4 (RGBA), the channels PIL's Image.open keeps (so ToTensor gives the same
// channel count). Differences from PIL, on purpose: palette PNGs decode to RGB(A), not
// to palette indices; 16-bit PNGs are reduced to 8 bits; CMYK JPEGs are converted to RGB
// (as PIL's convert("RGB") of Adobe-inverted CMYK). As PIL: a PNG's gAMA chunk is
// ignored (stored values, no gamma conversion); a grey or RGB PNG with a tRNS colour
// key keeps 1 or 3 channels. A truncated JPEG is an error (libjpeg would pad it grey).
#include <ATen/Tensor.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>

#include "ood/export.hpp"

namespace ood::io {

/// Channels of a decoded image.
enum class ImageMode {
  Keep,  // as stored (see above)
  Grey,  // 1 channel (ITU-R 601-2 luma, as PIL's convert("L"))
  Rgb,   // 3 channels (grey repeated; alpha dropped, as PIL's convert("RGB"))
};

/// Decodes a JPEG or PNG held in memory. `name` (a file or archive member) is used in
/// messages. Throws ood::FileError naming it for an unknown format, a corrupt or
/// truncated image, or one larger than `max_pixels` (a decompression-bomb guard).
OOD_SDK_API at::Tensor decode_image(const std::uint8_t* data, std::size_t size, const std::string& name,
                                    ImageMode mode = ImageMode::Keep, std::int64_t max_pixels = 1LL << 28);

/// Reads and decodes an image file. Throws ood::FileError naming the file.
OOD_SDK_API at::Tensor read_image(const std::filesystem::path& file, ImageMode mode = ImageMode::Keep);

/// Whether the bytes start like a JPEG or a PNG.
OOD_SDK_API bool looks_like_image(const std::uint8_t* data, std::size_t size);

/// uint8 [H, W, C] -> float32 [C, H, W] in [0, 1] (torchvision's ToTensor).
OOD_SDK_API at::Tensor image_to_tensor(const at::Tensor& hwc);

/// uint8 [H, W, C] (C = 1, 2, 3 or 4) to a PNG file (lossless; for fixtures, exports
/// and tests). Written to a temporary name, then renamed into place; missing folders
/// are created.
OOD_SDK_API void write_png(const std::filesystem::path& file, const at::Tensor& hwc);
/// uint8 [H, W, C] (C = 1 or 3) to a JPEG file of the given quality.
OOD_SDK_API void write_jpeg(const std::filesystem::path& file, const at::Tensor& hwc, int quality = 95);

}  // namespace ood::io
