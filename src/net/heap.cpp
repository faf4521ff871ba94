#include "net/heap.hpp"

// Any C library header defines __GLIBC__ (through <features.h>) when the library is glibc.
#include <cstdlib>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace wsx::net {

void return_free_heap() noexcept {
#if defined(__GLIBC__)
    // 0: keep no padding at the top of the main heap. Since glibc 2.8 this also releases whole
    // free pages inside every arena (madvise), not only the top of the main one.
    static_cast<void>(malloc_trim(0));
#endif
}

}  // namespace wsx::net
