// UTF-8 validation (RFC 3629, RFC 6455 §8.1) as a differential target: every kernel, fed the input
// in fuzzer-chosen pieces (and one validator switching kernels between pieces), must give the
// reference's status after every piece and the reference's error offset. Any disagreement aborts.
#include "proto/utf8.hpp"

#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "harnesses.hpp"
#include "support.hpp"

namespace wsx::fuzz {

namespace {

using proto::Utf8Impl;
using proto::Utf8Status;
using proto::Utf8Validator;

constexpr std::array<Utf8Impl, 4> kAllImpls = {Utf8Impl::scalar, Utf8Impl::sse2, Utf8Impl::avx2,
                                               Utf8Impl::neon};

void check_against(const Utf8Validator& v, Utf8Status fed, const ReferenceUtf8& ref,
                   std::size_t prefix) {
    const Utf8Status expected = ref.status_after(prefix);
    WSX_FUZZ_CHECK(fed == expected);
    WSX_FUZZ_CHECK(v.status() == expected);
    if (expected == Utf8Status::invalid) WSX_FUZZ_CHECK(v.error_offset() == ref.error_offset);
}

}  // namespace

int run_utf8(const std::uint8_t* data, std::size_t size) {
    InputReader reader(data, size);
    const std::uint16_t seed = reader.u16();
    const std::span<const std::uint8_t> text = reader.rest();
    const ReferenceUtf8 ref = reference_utf8(text);

    std::vector<Utf8Impl> impls;
    for (const Utf8Impl impl : kAllImpls) {
        if (proto::utf8_impl_available(impl)) impls.push_back(impl);
    }
    WSX_FUZZ_CHECK(!impls.empty() && proto::utf8_impl_available(proto::utf8_impl_selected()));

    // One validator per kernel, one with the default feed(), one rotating through the kernels.
    std::vector<Utf8Validator> per_impl(impls.size());
    Utf8Validator by_default;
    Utf8Validator rotating;
    Splitter splitter(seed);
    std::size_t pos = 0;
    std::size_t piece_index = 0;
    while (pos < text.size()) {
        const std::span<const std::uint8_t> piece =
            text.subspan(pos, splitter.next(text.size() - pos));
        pos += piece.size();
        for (std::size_t k = 0; k < impls.size(); ++k)
            check_against(per_impl[k], per_impl[k].feed(piece, impls[k]), ref, pos);
        check_against(by_default, by_default.feed(piece), ref, pos);
        const Utf8Impl impl = impls[piece_index++ % impls.size()];
        check_against(rotating, rotating.feed(piece, impl), ref, pos);
    }
    // Feeding nothing changes nothing.
    check_against(by_default, by_default.feed({}), ref, text.size());

    const bool valid = !ref.invalid && ref.boundary[text.size()];
    WSX_FUZZ_CHECK(proto::is_valid_utf8(text) == valid);

    // One call with everything, after a reset.
    by_default.reset();
    WSX_FUZZ_CHECK(by_default.status() == Utf8Status::complete);
    check_against(by_default, by_default.feed(text), ref, text.size());
    return 0;
}

}  // namespace wsx::fuzz
