// libpng (Debian libpng-dev 1.6.x) for VoxelRender's PNG files. Only the simplified API
// (png_image_*) is used: it reports errors through png_image.message and needs no setjmp.
// The include path and library come from pkg-config (`libpng`).
#ifndef VOXPLAIN_CPNG_SHIM_H
#define VOXPLAIN_CPNG_SHIM_H
#include <png.h>

/// `PNG_IMAGE_PNG_SIZE_MAX`, a macro Swift cannot import: the most bytes the PNG of `image` takes, so
/// one call of `png_image_write_to_memory` can encode into a buffer that large.
static inline size_t vx_png_size_max(const png_image *image) { return PNG_IMAGE_PNG_SIZE_MAX(*image); }
#endif
