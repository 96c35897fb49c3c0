// niftilib (Debian libnifti-dev) through its NIfTI-2 library, which reads NIfTI-1 and NIfTI-2.
// Debian ships no pkg-config file for niftilib and SwiftPM drops -D flags from .pc files, so this
// shim defines HAVE_ZLIB itself (for .nii.gz); the include path comes from the NIfTI target
// (-Xcc -I/usr/include/nifti in Package.swift).
// nifti1_io.h and nifti2_io.h cannot share a translation unit: only nifti2_io.h is used.
#ifndef VOXPLAIN_CNIFTI_SHIM_H
#define VOXPLAIN_CNIFTI_SHIM_H
#ifndef HAVE_ZLIB
#define HAVE_ZLIB 1
#endif
#include <nifti2_io.h>
#endif
