#include "proto/output_queue.hpp"

#include <cstring>
#include <utility>

namespace wsx::proto {

namespace {
// Owned storage above this is given back once the queue drains, so a connection that once sent a
// large burst does not keep that memory while idle.
constexpr std::size_t kRetainedCapacity = 64 * 1024;
}  // namespace

OutputQueue::Segment& OutputQueue::open_owned_segment() {
    if (segments_.size() > first_segment_) {
        Segment& last = segments_.back();
        if (!last.external && last.offset + last.size == owned_.size()) return last;
    }
    return segments_.emplace_back(Segment{nullptr, owned_.size(), 0, {}});
}

std::uint8_t* OutputQueue::append_uninitialized(std::size_t n) {
    Segment& segment = open_owned_segment();
    const std::size_t at = owned_.size();
    owned_.resize(at + n);
    segment.size += n;
    pending_bytes_ += n;
    return owned_.data() + at;
}

void OutputQueue::append(std::span<const std::uint8_t> bytes) {
    if (bytes.empty()) return;
    std::memcpy(append_uninitialized(bytes.size()), bytes.data(), bytes.size());
}

void OutputQueue::append_reference(std::span<const std::uint8_t> bytes, SharedBuffer keep_alive) {
    if (bytes.empty()) return;
    segments_.push_back(Segment{bytes.data(), 0, bytes.size(), std::move(keep_alive)});
    pending_bytes_ += bytes.size();
}

std::size_t OutputQueue::gather(std::span<IoSlice> out) const noexcept {
    std::size_t n = 0;
    for (std::size_t i = first_segment_; i < segments_.size() && n < out.size(); ++i) {
        const Segment& s = segments_[i];
        const std::uint8_t* base = s.external ? s.external + s.offset : owned_.data() + s.offset;
        out[n++] = IoSlice{base, s.size};
    }
    return n;
}

void OutputQueue::consume(std::size_t n) noexcept {
    pending_bytes_ -= n;
    while (n > 0) {
        Segment& s = segments_[first_segment_];
        if (n < s.size) {
            s.offset += n;
            s.size -= n;
            break;
        }
        n -= s.size;
        s.size = 0;
        s.keep_alive = SharedBuffer{};  // release the shared frame as soon as it is written
        ++first_segment_;
    }
    compact();
}

void OutputQueue::compact() noexcept {
    if (first_segment_ == segments_.size()) {
        // Drained: start over at the front of the storage we already have.
        segments_.clear();
        first_segment_ = 0;
        owned_.clear();
        if (owned_.capacity() > kRetainedCapacity) decltype(owned_)().swap(owned_);
        return;
    }
    // Under steady streaming the queue may never drain; drop consumed segments once they are
    // the majority, so the bookkeeping stays proportional to what is pending.
    if (first_segment_ >= 64 && first_segment_ * 2 >= segments_.size()) {
        segments_.erase(segments_.begin(),
                        segments_.begin() + static_cast<std::ptrdiff_t>(first_segment_));
        first_segment_ = 0;
    }
    // Likewise for owned bytes already written: slide the live ones to the front. (Below the
    // retained size there is nothing worth moving, and no scan of the segments.)
    if (owned_.size() < kRetainedCapacity) return;
    std::size_t first_owned = owned_.size();
    for (std::size_t i = first_segment_; i < segments_.size(); ++i) {
        if (!segments_[i].external) {
            first_owned = segments_[i].offset;
            break;
        }
    }
    if (first_owned >= kRetainedCapacity && first_owned * 2 >= owned_.size()) {
        std::memmove(owned_.data(), owned_.data() + first_owned, owned_.size() - first_owned);
        owned_.resize(owned_.size() - first_owned);
        for (std::size_t i = first_segment_; i < segments_.size(); ++i) {
            if (!segments_[i].external) segments_[i].offset -= first_owned;
        }
    }
}

void OutputQueue::clear() noexcept {
    segments_.clear();
    std::vector<Segment>().swap(segments_);
    decltype(owned_)().swap(owned_);
    first_segment_ = 0;
    pending_bytes_ = 0;
}

}  // namespace wsx::proto
