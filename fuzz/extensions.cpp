// Sec-WebSocket-Extensions (RFC 6455 §9.1, RFC 7692 §5.1). The input is a set of header lines:
// parse_extensions over them must equal parse_extension_list over each value in turn; everything
// parsed is made of tokens; and a parsed list written back out (plain or with quoted values)
// parses to the same offers.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "harnesses.hpp"
#include "proto/handshake.hpp"
#include "support.hpp"

namespace wsx::fuzz {

namespace {

using proto::ExtensionOffer;
using proto::ExtensionParam;
using proto::HttpHeader;

bool same_offers(const std::vector<ExtensionOffer>& a, const std::vector<ExtensionOffer>& b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (a[i].name != b[i].name || a[i].params.size() != b[i].params.size()) return false;
        for (std::size_t j = 0; j < a[i].params.size(); ++j) {
            if (a[i].params[j].name != b[i].params[j].name) return false;
            if (a[i].params[j].value != b[i].params[j].value) return false;
        }
    }
    return true;
}

void check_tokens(const std::vector<ExtensionOffer>& offers) {
    for (const ExtensionOffer& offer : offers) {
        WSX_FUZZ_CHECK(reference_is_token(offer.name));
        for (const ExtensionParam& param : offer.params) {
            WSX_FUZZ_CHECK(reference_is_token(param.name));
            // §9.1: a value is a token, or a quoted-string whose content is a token.
            if (param.value) WSX_FUZZ_CHECK(reference_is_token(*param.value));
        }
    }
}

// Writes the offers back as a header value: "name; p=v, name2". With `quote`, values become
// quoted-strings, every `quote`-th character escaped with a backslash.
std::string serialize(const std::vector<ExtensionOffer>& offers, unsigned quote) {
    std::string out;
    for (const ExtensionOffer& offer : offers) {
        if (!out.empty()) out += quote % 2 == 0 ? ", " : ",\t";
        out += offer.name;
        for (const ExtensionParam& param : offer.params) {
            out += quote % 3 == 0 ? "; " : ";";
            out += param.name;
            if (!param.value) continue;
            out += '=';
            if (quote == 0) {
                out += *param.value;
                continue;
            }
            out += '"';
            for (std::size_t i = 0; i < param.value->size(); ++i) {
                if (i % quote == 0) out += '\\';
                out += (*param.value)[i];
            }
            out += '"';
        }
    }
    return out;
}

}  // namespace

int run_extensions(const std::uint8_t* data, std::size_t size) {
    const std::string_view text = as_chars({data, size});

    // One header per line; lines starting with '#' get another name and must be ignored, the
    // rest alternate the name's case (field names are case-insensitive, RFC 9110 §5.1).
    std::vector<HttpHeader> headers;
    std::size_t start = 0;
    for (std::size_t line = 0; start <= text.size(); ++line) {
        const std::size_t end = std::min(text.find('\n', start), text.size());
        const std::string_view value = text.substr(start, end - start);
        std::string_view name =
            line % 2 == 0 ? "Sec-WebSocket-Extensions" : "sec-websocket-EXTENSIONS";
        if (!value.empty() && value.front() == '#') name = "Sec-WebSocket-Protocol";
        headers.push_back({name, value});
        start = end + 1;
    }

    std::vector<ExtensionOffer> expected;
    bool expected_ok = true;
    for (const HttpHeader& h : headers) {
        if (h.name == "Sec-WebSocket-Protocol") continue;
        std::vector<ExtensionOffer> one;
        const bool ok = proto::parse_extension_list(h.value, one);
        check_tokens(one);
        if (ok) {
            // What parsed, written out again, parses to the same offers.
            for (unsigned quote = 0; quote < 3; ++quote) {
                std::vector<ExtensionOffer> again;
                WSX_FUZZ_CHECK(proto::parse_extension_list(serialize(one, quote), again));
                WSX_FUZZ_CHECK(same_offers(one, again));
            }
        }
        expected.insert(expected.end(), one.begin(), one.end());
        if (!ok) {
            expected_ok = false;
            break;
        }
    }

    std::vector<ExtensionOffer> all;
    WSX_FUZZ_CHECK(proto::parse_extensions(headers, all) == expected_ok);
    WSX_FUZZ_CHECK(same_offers(all, expected));
    return 0;
}

}  // namespace wsx::fuzz
