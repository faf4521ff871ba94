#include "proto/mask_key_source.hpp"

#include <openssl/rand.h>

namespace wsx::proto {

void MaskKeySource::refill() noexcept {
    next_ = 0;
    ++refills_;
    if (RAND_bytes(pool_.data(), static_cast<int>(pool_.size())) == 1) return;
    // OpenSSL could not produce randomness (no entropy source at all). Masking exists to defeat
    // cache poisoning by scripts, not to keep secrets, so rather than fail every send we stir the
    // previous pool with a counter (splitmix64) — distinct keys, though no longer unpredictable.
    std::uint64_t x = 0x9E3779B97F4A7C15ULL * refills_;
    for (std::size_t i = 0; i < pool_.size(); i += 8) {
        x += 0x9E3779B97F4A7C15ULL;
        std::uint64_t z = x;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        z ^= z >> 31;
        for (std::size_t b = 0; b < 8; ++b)
            pool_[i + b] ^= static_cast<std::uint8_t>(z >> (8 * b));
    }
}

}  // namespace wsx::proto
