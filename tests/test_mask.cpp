#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "proto/mask.hpp"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WSX_TEST_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define WSX_TEST_ASAN 1
#endif
#if defined(WSX_TEST_ASAN)
#include <sanitizer/asan_interface.h>
#endif

namespace {

using namespace wsx::proto;

constexpr MaskImpl kAllImpls[] = {MaskImpl::scalar, MaskImpl::sse2, MaskImpl::avx2,
                                  MaskImpl::avx512, MaskImpl::neon};

// Key bytes are all non-zero so that a stray XOR outside the buffer always changes a guard byte.
constexpr MaskKey kKey = {0x37, 0xfa, 0x21, 0x3d};
constexpr std::uint8_t kGuardByte = 0xA5;

std::vector<MaskImpl> available_impls() {
    std::vector<MaskImpl> impls;
    for (const MaskImpl impl : kAllImpls) {
        if (mask_impl_available(impl)) impls.push_back(impl);
    }
    return impls;
}

// RFC 6455 §5.3 taken literally, one byte at a time: the oracle every variant must match.
std::vector<std::uint8_t> reference_mask(const std::uint8_t* src, std::size_t size, MaskKey key,
                                         std::size_t key_offset) {
    std::vector<std::uint8_t> out(src, src + size);
    for (std::size_t i = 0; i < size; ++i)
        out[i] ^= key[(key_offset + i) % 4];
    return out;
}

std::vector<std::uint8_t> random_bytes(std::size_t size, std::mt19937_64& rng) {
    std::vector<std::uint8_t> out(size);
    for (auto& b : out)
        b = static_cast<std::uint8_t>(rng());
    return out;
}

MaskKey random_key(std::mt19937_64& rng) {
    MaskKey key;
    for (auto& b : key)
        b = static_cast<std::uint8_t>(1 + rng() % 255);
    return key;
}

// `size` bytes starting `alignment` bytes past a 64-byte boundary, between guard bytes. Under
// ASan the guards are also poisoned, so a read outside [data, data + size) is reported too.
class GuardedBuffer {
  public:
    GuardedBuffer(std::size_t alignment, std::size_t size)
        : storage_(size + 4 * kSlack, kGuardByte), size_(size) {
        const auto start = reinterpret_cast<std::uintptr_t>(storage_.data()) + kSlack;
        const std::uintptr_t base = (start + kSlack - 1) & ~std::uintptr_t{kSlack - 1};
        offset_ = base - reinterpret_cast<std::uintptr_t>(storage_.data()) + alignment;
#if defined(WSX_TEST_ASAN)
        ASAN_POISON_MEMORY_REGION(storage_.data(), offset_);
        ASAN_POISON_MEMORY_REGION(data() + size_, storage_.size() - offset_ - size_);
#endif
    }
    GuardedBuffer(const GuardedBuffer&) = delete;
    GuardedBuffer& operator=(const GuardedBuffer&) = delete;
    ~GuardedBuffer() {
#if defined(WSX_TEST_ASAN)
        ASAN_UNPOISON_MEMORY_REGION(storage_.data(), storage_.size());
#endif
    }

    std::uint8_t* data() {
        return storage_.data() + offset_;
    }
    std::size_t size() const {
        return size_;
    }
    void fill(const std::uint8_t* from) {
        if (size_ != 0) std::memcpy(data(), from, size_);
    }
    bool equals(const std::vector<std::uint8_t>& expected) {
        return expected.size() == size_ && std::equal(expected.begin(), expected.end(), data());
    }
    bool guards_intact() {
#if defined(WSX_TEST_ASAN)
        ASAN_UNPOISON_MEMORY_REGION(storage_.data(), storage_.size());
#endif
        const auto is_guard = [](std::uint8_t b) { return b == kGuardByte; };
        const bool intact =
            std::all_of(storage_.begin(), storage_.begin() + offset_, is_guard) &&
            std::all_of(storage_.begin() + offset_ + size_, storage_.end(), is_guard);
#if defined(WSX_TEST_ASAN)
        ASAN_POISON_MEMORY_REGION(storage_.data(), offset_);
        ASAN_POISON_MEMORY_REGION(data() + size_, storage_.size() - offset_ - size_);
#endif
        return intact;
    }

  private:
    static constexpr std::size_t kSlack = 64;
    std::vector<std::uint8_t> storage_;
    std::size_t size_;
    std::size_t offset_ = 0;
};

}  // namespace

TEST_CASE("the RFC 6455 §5.7 masked \"Hello\" unmasks with key 37 fa 21 3d") {
    const std::uint8_t masked[] = {0x7f, 0x9f, 0x4d, 0x51, 0x58};
    for (const MaskImpl impl : available_impls()) {
        INFO("implementation " << std::string(mask_impl_name(impl)));
        std::uint8_t payload[5];
        std::memcpy(payload, masked, sizeof payload);
        mask_impl_function(impl)(payload, sizeof payload, kKey, 0);
        CHECK(std::memcmp(payload, "Hello", 5) == 0);
    }
}

TEST_CASE("scalar is always available and the selected implementation runs on this CPU") {
    CHECK(mask_impl_available(MaskImpl::scalar));
    CHECK(mask_impl_available(mask_impl_selected()));
    for (const MaskImpl impl : kAllImpls) {
        INFO("implementation " << std::string(mask_impl_name(impl)));
        if (mask_impl_available(impl)) {
            CHECK(static_cast<bool>(mask_impl_function(impl)));
            CHECK(static_cast<bool>(mask_impl_copy_function(impl)));
        }
    }
#if defined(__x86_64__)
    CHECK(mask_impl_available(MaskImpl::sse2));
    CHECK_FALSE(mask_impl_available(MaskImpl::neon));
    CHECK_FALSE(static_cast<bool>(mask_impl_function(MaskImpl::neon)));
#endif
    MESSAGE("apply_mask uses " << std::string(mask_impl_name(mask_impl_selected())));
}

TEST_CASE(
    "every implementation masks in place exactly as §5.3 for every length, offset, alignment") {
    std::mt19937_64 rng(1);
    const auto input = random_bytes(300, rng);
    for (const MaskImpl impl : available_impls()) {
        INFO("implementation " << std::string(mask_impl_name(impl)));
        const MaskFn fn = mask_impl_function(impl);
        for (std::size_t size = 0; size <= 300; ++size) {
            for (std::size_t key_offset = 0; key_offset < 4; ++key_offset) {
                const auto expected = reference_mask(input.data(), size, kKey, key_offset);
                for (std::size_t alignment = 0; alignment < 64; ++alignment) {
                    GuardedBuffer buffer(alignment, size);
                    buffer.fill(input.data());
                    fn(buffer.data(), size, kKey, key_offset);
                    if (!buffer.equals(expected) || !buffer.guards_intact()) {
                        FAIL_CHECK("size " << size << " offset " << key_offset << " alignment "
                                           << alignment);
                    }
                }
            }
        }
    }
}

TEST_CASE("every implementation masks while copying exactly as §5.3 and leaves the source alone") {
    std::mt19937_64 rng(2);
    const auto input = random_bytes(300, rng);
    for (const MaskImpl impl : available_impls()) {
        INFO("implementation " << std::string(mask_impl_name(impl)));
        const CopyMaskFn fn = mask_impl_copy_function(impl);
        for (std::size_t size = 0; size <= 300; ++size) {
            for (std::size_t key_offset = 0; key_offset < 4; ++key_offset) {
                const auto expected = reference_mask(input.data(), size, kKey, key_offset);
                for (std::size_t alignment = 0; alignment < 64; ++alignment) {
                    // The source sits at a different alignment so that the two never line up.
                    GuardedBuffer src((alignment * 7 + 3) % 64, size);
                    GuardedBuffer dst(alignment, size);
                    src.fill(input.data());
                    fn(dst.data(), src.data(), size, kKey, key_offset);
                    const std::vector<std::uint8_t> original(input.begin(), input.begin() + size);
                    if (!dst.equals(expected) || !src.equals(original) || !dst.guards_intact() ||
                        !src.guards_intact()) {
                        FAIL_CHECK("size " << size << " offset " << key_offset << " alignment "
                                           << alignment);
                    }
                }
            }
        }
    }
}

TEST_CASE("apply_mask and copy_masked match §5.3 on both sides of the dispatch threshold") {
    std::mt19937_64 rng(3);
    const auto input = random_bytes(300, rng);
    for (std::size_t size = 0; size <= 300; ++size) {
        for (std::size_t key_offset = 0; key_offset < 4; ++key_offset) {
            const auto expected = reference_mask(input.data(), size, kKey, key_offset);
            GuardedBuffer in_place(size % 64, size);
            in_place.fill(input.data());
            apply_mask({in_place.data(), size}, kKey, key_offset);
            CHECK(in_place.equals(expected));
            CHECK(in_place.guards_intact());

            GuardedBuffer src(0, size);
            GuardedBuffer dst((size + 1) % 64, size);
            src.fill(input.data());
            copy_masked(dst.data(), src.data(), size, kKey, key_offset);
            CHECK(dst.equals(expected));
            CHECK(dst.guards_intact());
        }
    }
}

TEST_CASE("only the key offset modulo 4 matters") {
    std::mt19937_64 rng(4);
    const auto input = random_bytes(200, rng);
    for (const MaskImpl impl : available_impls()) {
        INFO("implementation " << std::string(mask_impl_name(impl)));
        for (const std::size_t key_offset :
             {std::size_t{4}, std::size_t{5}, std::size_t{1001}, std::size_t{1} << 40, SIZE_MAX}) {
            INFO("key_offset " << key_offset);
            auto data = input;
            mask_impl_function(impl)(data.data(), data.size(), kKey, key_offset);
            CHECK(data == reference_mask(input.data(), input.size(), kKey, key_offset % 4));
        }
    }
}

TEST_CASE("every implementation matches §5.3 on 1 MiB random buffers") {
    std::mt19937_64 rng(5);
    constexpr std::size_t kSize = std::size_t{1} << 20;
    const auto input = random_bytes(kSize + 64, rng);
    for (const MaskImpl impl : available_impls()) {
        INFO("implementation " << std::string(mask_impl_name(impl)));
        for (int round = 0; round < 4; ++round) {
            const MaskKey key = random_key(rng);
            const std::size_t key_offset = rng() % 4;
            const std::size_t size = kSize - rng() % 64;
            const std::size_t src_shift = rng() % 64;
            const auto expected = reference_mask(input.data() + src_shift, size, key, key_offset);

            GuardedBuffer in_place(rng() % 64, size);
            in_place.fill(input.data() + src_shift);
            mask_impl_function(impl)(in_place.data(), size, key, key_offset);
            CHECK(in_place.equals(expected));
            CHECK(in_place.guards_intact());

            GuardedBuffer dst(rng() % 64, size);
            mask_impl_copy_function(impl)(dst.data(), input.data() + src_shift, size, key,
                                          key_offset);
            CHECK(dst.equals(expected));
            CHECK(dst.guards_intact());
        }
    }
}

TEST_CASE("masking twice with the same key and offset restores the payload") {
    std::mt19937_64 rng(6);
    const auto input = random_bytes(5000, rng);
    for (const MaskImpl impl : available_impls()) {
        INFO("implementation " << std::string(mask_impl_name(impl)));
        for (const std::size_t size : {0, 1, 7, 15, 16, 33, 125, 126, 1024, 4999, 5000}) {
            for (std::size_t key_offset = 0; key_offset < 4; ++key_offset) {
                std::vector<std::uint8_t> data(input.begin(), input.begin() + size);
                mask_impl_function(impl)(data.data(), size, kKey, key_offset);
                if (size != 0) CHECK(data != std::vector(input.begin(), input.begin() + size));
                mask_impl_function(impl)(data.data(), size, kKey, key_offset);
                CHECK(data == std::vector(input.begin(), input.begin() + size));
            }
        }
    }
}

TEST_CASE("masking a payload piece by piece with the running offset equals masking it whole") {
    std::mt19937_64 rng(7);
    for (int round = 0; round < 50; ++round) {
        const std::size_t size = rng() % 20000;
        const MaskKey key = random_key(rng);
        const std::size_t start_offset = rng() % 4;
        const auto input = random_bytes(size, rng);
        const auto expected = reference_mask(input.data(), size, key, start_offset);

        // Cut points shared by every implementation, mixing 1-byte and large pieces.
        std::vector<std::size_t> cuts{0};
        while (cuts.back() < size) {
            const std::size_t piece = rng() % 2 == 0 ? 1 + rng() % 8 : 1 + rng() % 3000;
            cuts.push_back(std::min(size, cuts.back() + piece));
        }

        const auto run = [&](auto&& mask_piece) {
            std::vector<std::uint8_t> data = input;
            std::vector<std::uint8_t> copy(size);
            for (std::size_t c = 0; c + 1 < cuts.size(); ++c) {
                mask_piece(data.data() + cuts[c], copy.data() + cuts[c], input.data() + cuts[c],
                           cuts[c + 1] - cuts[c], start_offset + cuts[c]);
            }
            CHECK(data == expected);
            CHECK(copy == expected);
        };
        run([&](std::uint8_t* in_place, std::uint8_t* dst, const std::uint8_t* src, std::size_t n,
                std::size_t offset) {
            apply_mask({in_place, n}, key, offset);
            copy_masked(dst, src, n, key, offset);
        });
        for (const MaskImpl impl : available_impls()) {
            INFO("implementation " << std::string(mask_impl_name(impl)));
            run([&](std::uint8_t* in_place, std::uint8_t* dst, const std::uint8_t* src,
                    std::size_t n, std::size_t offset) {
                mask_impl_function(impl)(in_place, n, key, offset);
                mask_impl_copy_function(impl)(dst, src, n, key, offset);
            });
        }
    }
}

TEST_CASE("unmask_is_ascii unmasks as §5.3 and says ASCII exactly when every byte is below 0x80") {
    std::mt19937_64 rng(8);
    std::vector<std::uint8_t> ascii(300);
    for (auto& b : ascii)
        b = static_cast<std::uint8_t>(rng() % 0x80);
    // From 32 bytes on only the AVX2 kernel looks at the bytes; elsewhere the answer is "unknown".
    const bool long_checked = mask_impl_selected() == MaskImpl::avx2;
    for (std::size_t size = 0; size <= 300; ++size) {
        const MaskKey key = random_key(rng);
        const auto masked = reference_mask(ascii.data(), size, key, 0);
        const std::vector<std::uint8_t> plain(ascii.begin(), ascii.begin() + size);
        for (std::size_t alignment = 0; alignment < 64; ++alignment) {
            GuardedBuffer buffer(alignment, size);
            buffer.fill(masked.data());
            const bool is_ascii = unmask_is_ascii({buffer.data(), size}, key);
            if (!buffer.equals(plain) || !buffer.guards_intact() ||
                is_ascii != (size < 32 || long_checked)) {
                FAIL_CHECK("ASCII, size " << size << " alignment " << alignment);
            }
        }
        // One byte with the high bit set, at every position: never reported as ASCII.
        for (std::size_t at = 0; at < size; ++at) {
            std::vector<std::uint8_t> text = plain;
            text[at] = static_cast<std::uint8_t>(0x80 | rng());
            const auto masked_text = reference_mask(text.data(), size, key, 0);
            GuardedBuffer buffer((size + at) % 64, size);
            buffer.fill(masked_text.data());
            const bool is_ascii = unmask_is_ascii({buffer.data(), size}, key);
            if (!buffer.equals(text) || !buffer.guards_intact() || is_ascii) {
                FAIL_CHECK("high byte at " << at << " of " << size);
            }
        }
    }
}
