#include "frame_batch.hpp"

#include <algorithm>
#include <cstring>
#include <span>

#include "proto/mask.hpp"

namespace wsx::bench {

namespace {

// splitmix64: deterministic input, so every run of a benchmark sees the same bytes.
class Random {
  public:
    explicit Random(std::uint64_t seed) noexcept : state_(seed) {}

    std::uint64_t next() noexcept {
        state_ += 0x9E3779B97F4A7C15ULL;
        std::uint64_t z = state_;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        return z ^ (z >> 31);
    }

    // Uniform enough in [low, high] for test input.
    std::uint32_t between(std::uint32_t low, std::uint32_t high) noexcept {
        return low + static_cast<std::uint32_t>(next() % (high - low + 1));
    }

  private:
    std::uint64_t state_;
};

// RFC 3629 §3: the UTF-8 encoding of one scalar value, `length` bytes long.
void append_code_point(std::vector<std::uint8_t>& out, std::uint32_t cp, std::size_t length) {
    const auto byte = [](std::uint32_t v) { return static_cast<std::uint8_t>(v); };
    switch (length) {
        case 2:
            out.push_back(byte(0xC0 | (cp >> 6)));
            break;
        case 3:
            out.push_back(byte(0xE0 | (cp >> 12)));
            out.push_back(byte(0x80 | ((cp >> 6) & 0x3F)));
            break;
        default:
            out.push_back(byte(0xF0 | (cp >> 18)));
            out.push_back(byte(0x80 | ((cp >> 12) & 0x3F)));
            out.push_back(byte(0x80 | ((cp >> 6) & 0x3F)));
            break;
    }
    out.push_back(byte(0x80 | (cp & 0x3F)));
}

std::uint32_t random_code_point(Random& random, std::size_t length) {
    switch (length) {
        case 2:
            return random.between(0x80, 0x7FF);
        case 3: {
            // U+D800..U+DFFF are surrogates, which UTF-8 must not encode (RFC 3629 §3).
            const std::uint32_t cp = random.between(0x800, 0xFFFF - 0x800);
            return cp < 0xD800 ? cp : cp + 0x800;
        }
        default:
            return random.between(0x10000, 0x10FFFF);
    }
}

proto::MaskKey random_key(Random& random, Keys keys) {
    proto::MaskKey key;
    const std::uint64_t bits = random.next();
    for (std::size_t i = 0; i < key.size(); ++i) {
        key[i] = static_cast<std::uint8_t>(bits >> (8 * i));
        if (keys == Keys::ascii_preserving) key[i] &= 0x7F;
    }
    return key;
}

}  // namespace

std::vector<std::uint8_t> make_payload(Payload kind, std::size_t size, std::uint64_t seed) {
    Random random(seed);
    std::vector<std::uint8_t> out;
    out.reserve(size);
    switch (kind) {
        case Payload::binary:
            while (out.size() < size)
                out.push_back(static_cast<std::uint8_t>(random.next()));
            break;
        case Payload::ascii:
            while (out.size() < size)
                out.push_back(static_cast<std::uint8_t>(random.between(0x20, 0x7E)));
            break;
        case Payload::mixed_utf8:
            while (out.size() < size) {
                const std::size_t room = size - out.size();
                if (room == 1) {
                    out.push_back(static_cast<std::uint8_t>(random.between(0x20, 0x7E)));
                    break;
                }
                const std::size_t length =
                    random.between(2, static_cast<std::uint32_t>(std::min<std::size_t>(room, 4)));
                append_code_point(out, random_code_point(random, length), length);
            }
            break;
    }
    return out;
}

proto::MaskKey FrameBatch::key(std::size_t i) const noexcept {
    proto::MaskKey k{};
    if (masked) std::memcpy(k.data(), payload(i) - k.size(), k.size());
    return k;
}

void FrameBatch::remask() noexcept {
    if (!masked) return;
    for (std::size_t i = 0; i < frame_count; ++i)
        proto::apply_mask({payload(i), payload_size}, key(i));
}

FrameBatch make_batch(Payload kind, std::size_t payload_size, std::size_t frame_count, bool masked,
                      Keys keys) {
    FrameBatch batch;
    batch.frame_count = frame_count;
    batch.payload_size = payload_size;
    batch.header_size = proto::frame_header_size(payload_size, masked);
    batch.stride = batch.header_size + payload_size;
    batch.masked = masked;
    batch.wire.reserve(frame_count * batch.stride);
    Random key_source(0x5EED0000 + payload_size);
    for (std::size_t i = 0; i < frame_count; ++i) {
        const std::vector<std::uint8_t> payload = make_payload(kind, payload_size, i + 1);
        proto::FrameHeader h;
        h.opcode = kind == Payload::binary ? proto::Opcode::binary : proto::Opcode::text;
        h.masked = masked;
        h.payload_length = payload_size;
        if (masked) h.mask_key = random_key(key_source, keys);
        std::uint8_t header[proto::kMaxFrameHeaderSize];
        const std::size_t header_size = proto::write_frame_header(header, h);
        batch.wire.insert(batch.wire.end(), header, header + header_size);
        // RFC 6455 §5.3 byte by byte, independent of the SIMD code under test.
        for (std::size_t j = 0; j < payload.size(); ++j) {
            batch.wire.push_back(
                static_cast<std::uint8_t>(payload[j] ^ (masked ? h.mask_key[j % 4] : 0)));
        }
    }
    return batch;
}

std::size_t frames_for(std::size_t payload_size, std::size_t bytes) noexcept {
    const std::size_t wire = proto::frame_header_size(payload_size, true) + payload_size;
    return std::max<std::size_t>(1, bytes / wire);
}

}  // namespace wsx::bench
