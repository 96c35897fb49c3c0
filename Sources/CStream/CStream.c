// CStream is header-only (include/CStream.h); SwiftPM needs one source file per C target.
#include "CStream.h"
