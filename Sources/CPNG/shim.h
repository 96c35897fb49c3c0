// libpng (Debian libpng-dev 1.6.x) for VoxelRender's PNG files. Only the simplified API
// (png_image_*) is used: it reports errors through png_image.message and needs no setjmp.
// The include path and library come from pkg-config (`libpng`).
#ifndef VOXPLAIN_CPNG_SHIM_H
#define VOXPLAIN_CPNG_SHIM_H
#include <png.h>
#endif
