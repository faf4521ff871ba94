#include "net/timer_wheel.hpp"

#include <bit>
#include <limits>

namespace wsx::net {

namespace {

constexpr std::uint64_t kSlotMask = TimerWheel::kSlotsPerLevel - 1;

// Slots {first, first+1, ..., first+count-1} modulo 64 as a bit mask; count in [1, 64].
std::uint64_t slot_window(std::uint64_t first, std::uint64_t count) noexcept {
    if (count >= TimerWheel::kSlotsPerLevel) return ~std::uint64_t{0};
    const std::uint64_t low_bits = (std::uint64_t{1} << count) - 1;
    return std::rotl(low_bits, static_cast<int>(first & kSlotMask));
}

}  // namespace

void Timer::cancel() noexcept {
    if (wheel_ != nullptr) wheel_->cancel(*this);
}

TimerWheel::~TimerWheel() {
    for (List& list : lists_) {
        for (Timer* timer = list.head; timer != nullptr;) {
            Timer* next = timer->next_;
            timer->prev_ = timer->next_ = nullptr;
            timer->wheel_ = nullptr;
            timer = next;
        }
    }
}

void TimerWheel::link(Timer& timer, std::uint16_t list_index) noexcept {
    List& list = lists_[list_index];
    timer.list_ = list_index;
    timer.prev_ = list.tail;
    timer.next_ = nullptr;
    if (list.tail != nullptr) {
        list.tail->next_ = &timer;
    } else {
        list.head = &timer;
        if (list_index < kDueList) {
            occupied_[list_index / kSlotsPerLevel] |= std::uint64_t{1} << (list_index & kSlotMask);
        }
    }
    list.tail = &timer;
}

void TimerWheel::unlink(Timer& timer) noexcept {
    List& list = lists_[timer.list_];
    (timer.prev_ != nullptr ? timer.prev_->next_ : list.head) = timer.next_;
    (timer.next_ != nullptr ? timer.next_->prev_ : list.tail) = timer.prev_;
    timer.prev_ = timer.next_ = nullptr;
    if (list.head == nullptr && timer.list_ < kDueList) {
        occupied_[timer.list_ / kSlotsPerLevel] &= ~(std::uint64_t{1} << (timer.list_ & kSlotMask));
    }
}

void TimerWheel::place(Timer& timer) noexcept {
    if (timer.deadline_ <= now_) {
        link(timer, kDueList);
        return;
    }
    // The highest differing digit picks the level; deadline > now_ makes its digit the larger one.
    const unsigned highest_bit = static_cast<unsigned>(std::bit_width(timer.deadline_ ^ now_)) - 1;
    const unsigned level = highest_bit / kSlotBits;
    const auto slot = static_cast<unsigned>((timer.deadline_ >> (level * kSlotBits)) & kSlotMask);
    link(timer, static_cast<std::uint16_t>(level * kSlotsPerLevel + slot));
}

void TimerWheel::arm_at(Timer& timer, std::uint64_t deadline) noexcept {
    if (timer.wheel_ != nullptr) timer.wheel_->cancel(timer);
    timer.wheel_ = this;
    timer.deadline_ = deadline;
    ++armed_count_;
    place(timer);
}

void TimerWheel::arm(Timer& timer, std::uint64_t delay) noexcept {
    const std::uint64_t headroom = std::numeric_limits<std::uint64_t>::max() - now_;
    arm_at(timer, delay > headroom ? std::numeric_limits<std::uint64_t>::max() : now_ + delay);
}

void TimerWheel::cancel(Timer& timer) noexcept {
    if (timer.wheel_ != this) return;
    unlink(timer);
    timer.wheel_ = nullptr;
    --armed_count_;
}

std::size_t TimerWheel::advance(std::uint64_t now) {
    if (now < now_) now = now_;

    // Empty every slot whose digit range [now_+1, now] passed on its level into one chain. A
    // level whose digit did not change is untouched, nor is any level above it.
    Timer* passed = nullptr;
    for (unsigned level = 0; level < kLevels; ++level) {
        const unsigned shift = level * kSlotBits;
        const std::uint64_t old_prefix = now_ >> shift;
        const std::uint64_t new_prefix = now >> shift;
        if (old_prefix == new_prefix) break;
        std::uint64_t pending =
            occupied_[level] & slot_window(old_prefix + 1, new_prefix - old_prefix);
        occupied_[level] &= ~pending;
        while (pending != 0) {
            const auto slot = static_cast<unsigned>(std::countr_zero(pending));
            pending &= pending - 1;
            ++stats_.slots_visited;
            List& list = lists_[level * kSlotsPerLevel + slot];
            list.tail->next_ = passed;
            passed = list.head;
            list = List{};
        }
    }
    now_ = now;

    // Due timers (armed at or before now_) and passed timers that are due go to the firing list;
    // the rest drop to the level matching their distance from the new now_.
    List& due = lists_[kDueList];
    for (Timer* timer = due.head; timer != nullptr; timer = timer->next_)
        timer->list_ = kFiringList;
    lists_[kFiringList] = due;
    due = List{};
    while (passed != nullptr) {
        Timer* timer = passed;
        passed = passed->next_;
        ++stats_.timers_visited;
        if (timer->deadline_ <= now_) {
            link(*timer, kFiringList);
        } else {
            place(*timer);
        }
    }
    sort_firing_list();

    // Fire one at a time from the list head, so a callback that cancels a timer still waiting in
    // the firing list takes it out cleanly.
    std::size_t fired = 0;
    List& firing = lists_[kFiringList];
    while (firing.head != nullptr) {
        Timer& timer = *firing.head;
        unlink(timer);
        timer.wheel_ = nullptr;
        --armed_count_;
        ++fired;
        ++stats_.timers_fired;
        if (timer.callback_ != nullptr) timer.callback_(timer.context_);
    }
    return fired;
}

// Stable merge of two deadline-sorted chains linked through next_.
Timer* TimerWheel::merge_by_deadline(Timer* a, Timer* b) noexcept {
    Timer* head = nullptr;
    Timer** link = &head;
    while (a != nullptr && b != nullptr) {
        Timer*& smaller = b->deadline_ < a->deadline_ ? b : a;
        *link = smaller;
        link = &smaller->next_;
        smaller = smaller->next_;
    }
    *link = a != nullptr ? a : b;
    return head;
}

void TimerWheel::sort_firing_list() noexcept {
    List& list = lists_[kFiringList];
    bool sorted = true;
    for (Timer* timer = list.head; timer != nullptr && timer->next_ != nullptr;
         timer = timer->next_) {
        if (timer->next_->deadline_ < timer->deadline_) {
            sorted = false;
            break;
        }
    }
    if (sorted) return;

    // Bottom-up merge sort over next_ (no recursion, no allocation): merge runs of width 1, 2,
    // 4, ... until one run remains. Stable, so equal deadlines keep their list order.
    std::size_t length = 0;
    for (Timer* timer = list.head; timer != nullptr; timer = timer->next_)
        ++length;
    Timer* head = list.head;
    for (std::size_t width = 1; width < length; width *= 2) {
        Timer* remaining = head;
        Timer* merged_head = nullptr;
        Timer* merged_tail = nullptr;
        while (remaining != nullptr) {
            Timer* left = remaining;
            Timer* cut = left;
            for (std::size_t i = 1; i < width && cut->next_ != nullptr; ++i)
                cut = cut->next_;
            Timer* right = cut->next_;
            cut->next_ = nullptr;
            cut = right;
            for (std::size_t i = 1; i < width && cut != nullptr && cut->next_ != nullptr; ++i) {
                cut = cut->next_;
            }
            remaining = nullptr;
            if (cut != nullptr) {
                remaining = cut->next_;
                cut->next_ = nullptr;
            }
            Timer* run = merge_by_deadline(left, right);
            (merged_tail != nullptr ? merged_tail->next_ : merged_head) = run;
            merged_tail = run;
            while (merged_tail->next_ != nullptr)
                merged_tail = merged_tail->next_;
        }
        head = merged_head;
    }

    // Rebuild the back links the singly linked sort ignored.
    Timer* previous = nullptr;
    for (Timer* timer = head; timer != nullptr; timer = timer->next_) {
        timer->prev_ = previous;
        previous = timer;
    }
    list.head = head;
    list.tail = previous;
}

std::optional<std::uint64_t> TimerWheel::next_deadline() const noexcept {
    if (lists_[kDueList].head != nullptr || lists_[kFiringList].head != nullptr) return now_;
    // Lower levels hold earlier deadlines than any higher level (they share more of now's
    // digits), and every occupied slot's digit exceeds now's digit on its level.
    for (unsigned level = 0; level < kLevels; ++level) {
        if (occupied_[level] == 0) continue;
        const unsigned shift = level * kSlotBits;
        const auto slot = static_cast<std::uint64_t>(std::countr_zero(occupied_[level]));
        const std::uint64_t prefix = ((now_ >> shift) & ~kSlotMask) | slot;
        return prefix << shift;
    }
    return std::nullopt;
}

}  // namespace wsx::net
