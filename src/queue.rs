//! A list taken from its front that gives its room back as it shrinks: the jobs of a long
//! list moving on, one step of the run to the next, are not held twice, nor all held until
//! the last one is taken. And the other way, [`place`]: items put back in list order, room
//! made as they come.

use std::collections::VecDeque;

/// Items taken in order (see the module's text).
#[derive(Debug)]
pub struct Queue<T>(VecDeque<T>);

impl<T> Default for Queue<T> {
    fn default() -> Queue<T> {
        Queue(VecDeque::new())
    }
}

impl<T> From<Vec<T>> for Queue<T> {
    fn from(items: Vec<T>) -> Queue<T> {
        Queue(items.into())
    }
}

impl<T> Queue<T> {
    pub fn push_back(&mut self, item: T) {
        self.0.push_back(item);
    }
}

impl<T> Iterator for Queue<T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        let item = self.0.pop_front()?;
        // Halved at most once per halving of the length: the moves total under the list's
        // length.
        if self.0.capacity() > 1024 && self.0.len() < self.0.capacity() / 4 {
            self.0.shrink_to(self.0.len() * 2);
        }
        Some(item)
    }
}

/// Puts `item` at `index` of `slots`, made room for as items come: a long run's steps end
/// about in list order, so the room grows with the run instead of all being taken at its start.
pub fn place<T>(slots: &mut Vec<Option<T>>, index: usize, item: T) {
    if slots.len() <= index {
        slots.resize_with(index + 1, || None);
    }
    slots[index] = Some(item);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_come_in_order_and_the_room_goes_with_them() {
        let mut queue = Queue::from((0..10_000).collect::<Vec<u32>>());
        let taken: Vec<u32> = queue.by_ref().take(9_000).collect();
        assert_eq!(taken, (0..9_000).collect::<Vec<_>>());
        assert!(queue.0.capacity() <= 4_000, "{}", queue.0.capacity());
        queue.push_back(10_000);
        assert_eq!(
            queue.collect::<Vec<_>>(),
            (9_000..=10_000).collect::<Vec<_>>()
        );
    }

    #[test]
    fn items_placed_out_of_order_take_room_up_to_the_furthest() {
        let mut slots = Vec::new();
        place(&mut slots, 2, 'c');
        place(&mut slots, 0, 'a');
        assert_eq!(slots, [Some('a'), None, Some('c')]);
        place(&mut slots, 1, 'b');
        assert_eq!(slots, [Some('a'), Some('b'), Some('c')]);
    }
}
