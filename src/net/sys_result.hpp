// System-call outcomes as values: the net layer never throws for an I/O failure, it hands the
// errno code back so the caller decides (EAGAIN is routine, ECONNRESET ends one connection, EMFILE
// is a capacity alarm).
#pragma once

#include <cerrno>

namespace wsx::net {

// A value, or the errno code that prevented it.
template <class T>
struct [[nodiscard]] SysResult {
    T value{};
    int error = 0;  // an errno code; 0 means success and `value` is meaningful

    constexpr bool ok() const noexcept { return error == 0; }
};

// Success, or the errno code of the failure.
struct [[nodiscard]] SysStatus {
    int error = 0;

    constexpr bool ok() const noexcept { return error == 0; }
};

// EAGAIN and EWOULDBLOCK may differ (POSIX allows it); both mean "try again when ready".
constexpr bool would_block(int error) noexcept {
    return error == EAGAIN || error == EWOULDBLOCK;
}

}  // namespace wsx::net
