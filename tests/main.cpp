#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

// UBSan reports and carries on by default, which would let a sanitizer finding pass a test run
// started without UBSAN_OPTIONS (e.g. `meson test` by hand): make every report fatal.
extern "C" const char* __ubsan_default_options();
extern "C" const char* __ubsan_default_options() {
    return "halt_on_error=1:print_stacktrace=1";
}
