// Masking keys for the client role (RFC 6455 §5.3: "unpredictable", from a strong source).
//
// Keys come from OpenSSL's CSPRNG (seeded from the OS once, per process), drawn in batches so a
// frame costs a copy of four bytes, not a call into the generator.
#pragma once

#include <array>
#include <cstdint>

#include "proto/frame.hpp"

namespace wsx::proto {

class MaskKeySource {
  public:
    // The key for the next frame. Should the CSPRNG ever fail, keys stay distinct but are no
    // longer unpredictable (mask_key_source.cpp says why that beats failing every send).
    MaskKey next() noexcept {
        if (next_ == kKeys) refill();
        MaskKey key;
        for (std::size_t i = 0; i < 4; ++i)
            key[i] = pool_[next_ * 4 + i];
        ++next_;
        return key;
    }

  private:
    static constexpr std::size_t kKeys = 64;  // 256 bytes: one RAND_bytes call per 64 frames
    void refill() noexcept;

    std::array<std::uint8_t, kKeys * 4> pool_{};
    std::uint32_t next_ = kKeys;
    std::uint32_t refills_ = 0;
};

}  // namespace wsx::proto
