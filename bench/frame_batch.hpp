// Test input for the benchmarks: batches of whole WebSocket frames laid out back to back, as a
// server finds them in its receive buffer after one read.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "proto/frame.hpp"

namespace wsx::bench {

enum class Payload : std::uint8_t {
    binary,      // random bytes, sent as binary frames
    ascii,       // printable ASCII, sent as text frames
    mixed_utf8,  // random 2-, 3- and 4-byte code points, sent as text frames
};

// `size` bytes of the given kind, the same for the same seed. mixed_utf8 ends with one ASCII byte
// when a multibyte code point cannot fill the last byte exactly; otherwise it holds no ASCII.
std::vector<std::uint8_t> make_payload(Payload kind, std::size_t size, std::uint64_t seed);

// Frames of one payload size, each `stride` bytes apart: a header of `header_size` bytes (the
// key, when masked, is its last four), then the payload.
struct FrameBatch {
    std::vector<std::uint8_t> wire;
    std::size_t frame_count = 0;
    std::size_t payload_size = 0;
    std::size_t header_size = 0;
    std::size_t stride = 0;
    bool masked = false;

    std::uint64_t payload_bytes() const noexcept {
        return std::uint64_t{frame_count} * payload_size;
    }
    std::uint8_t* payload(std::size_t i) noexcept { return wire.data() + i * stride + header_size; }
    const std::uint8_t* payload(std::size_t i) const noexcept {
        return wire.data() + i * stride + header_size;
    }
    proto::MaskKey key(std::size_t i) const noexcept;

    // XORs every payload with its key again. Connection::receive unmasks in place, so after a
    // receive this puts the batch back as it arrived (RFC 6455 §5.3: masking is its own inverse).
    void remask() noexcept;
};

enum class Keys : std::uint8_t {
    random,
    // Every key byte below 0x80, so masking keeps ASCII bytes ASCII: an ASCII text batch stays
    // valid UTF-8 whether its payloads are masked or not.
    ascii_preserving,
};

// `frame_count` unfragmented frames of `payload_size` bytes (binary for Payload::binary, text
// otherwise), each with its own payload and, when `masked`, its own key, as a client sends them.
FrameBatch make_batch(Payload kind, std::size_t payload_size, std::size_t frame_count, bool masked,
                      Keys keys = Keys::random);

// How many masked frames of `payload_size` bytes fill about `bytes` of wire (at least one).
std::size_t frames_for(std::size_t payload_size, std::size_t bytes) noexcept;

}  // namespace wsx::bench
