// Checks both handshake harnesses apply to a parsed HTTP head.
#pragma once

#include <string_view>

#include "proto/handshake.hpp"
#include "support.hpp"

namespace wsx::fuzz {

// A head parsed from `in`: every view points into the head's bytes, which end in the blank line,
// and every header is "token: value" with the value trimmed and free of CR, LF and NUL.
inline void check_head(const proto::HttpHead& head, std::string_view in,
                       const proto::HttpLimits& limits) {
    WSX_FUZZ_CHECK(head.size >= 4 && head.size <= in.size());
    WSX_FUZZ_CHECK(head.size <= limits.max_head_bytes);
    const std::string_view bytes = in.substr(0, head.size);
    WSX_FUZZ_CHECK(bytes.substr(bytes.size() - 4) == "\r\n\r\n");
    WSX_FUZZ_CHECK(head.headers.size() <= limits.max_headers);
    WSX_FUZZ_CHECK(points_into(head.method, bytes) && points_into(head.target, bytes));
    WSX_FUZZ_CHECK(points_into(head.reason, bytes));
    WSX_FUZZ_CHECK(head.version_major >= 0 && head.version_major <= 9);
    WSX_FUZZ_CHECK(head.version_minor >= 0 && head.version_minor <= 9);
    for (const proto::HttpHeader& h : head.headers) {
        WSX_FUZZ_CHECK(points_into(h.name, bytes) && points_into(h.value, bytes));
        WSX_FUZZ_CHECK(reference_is_token(h.name));
        WSX_FUZZ_CHECK(h.value.find_first_of(std::string_view("\r\n\0", 3)) ==
                       std::string_view::npos);
        if (!h.value.empty()) {
            WSX_FUZZ_CHECK(h.value.front() != ' ' && h.value.front() != '\t');
            WSX_FUZZ_CHECK(h.value.back() != ' ' && h.value.back() != '\t');
        }
    }
}

// The same result from two parsers fed the same bytes differently.
inline bool same_result(const proto::HttpParseResult& a, const proto::HttpParseResult& b) {
    return a.status == b.status && a.error == b.error;
}

}  // namespace wsx::fuzz
