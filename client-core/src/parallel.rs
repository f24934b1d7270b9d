//! Spreading independent CPU work (the Olm crypto of a large key share) over the machine's cores.
//! No I/O: the caller's thread waits for the result, as it would for the work done in line.

/// Below this many items per thread, starting a thread costs more than it saves.
#[cfg(not(target_arch = "wasm32"))]
const MIN_ITEMS_PER_THREAD: usize = 32;

/// `items.into_iter().map(work)`, in order, computed on every available core where there are threads
/// (not on wasm32, where it runs in line).
pub(crate) fn map_on_all_cores<T: Send, R: Send>(items: Vec<T>, work: impl Fn(T) -> R + Sync) -> Vec<R> {
    let threads = thread_count(items.len());
    if threads <= 1 {
        return items.into_iter().map(work).collect();
    }
    spread(items, threads, &work)
}

#[cfg(not(target_arch = "wasm32"))]
fn thread_count(items: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    cores.min(items / MIN_ITEMS_PER_THREAD)
}

#[cfg(target_arch = "wasm32")]
fn thread_count(_items: usize) -> usize {
    1
}

fn spread<T: Send, R: Send>(items: Vec<T>, threads: usize, work: &(impl Fn(T) -> R + Sync)) -> Vec<R> {
    let chunk_len = items.len().div_ceil(threads);
    let mut items = items.into_iter();
    let mut chunks: Vec<Vec<T>> = Vec::with_capacity(threads);
    loop {
        let chunk: Vec<T> = items.by_ref().take(chunk_len).collect();
        if chunk.is_empty() {
            break;
        }
        chunks.push(chunk);
    }
    let first = if chunks.is_empty() { Vec::new() } else { chunks.remove(0) };
    std::thread::scope(|scope| {
        let others: Vec<_> = chunks
            .into_iter()
            .map(|chunk| scope.spawn(move || chunk.into_iter().map(work).collect::<Vec<R>>()))
            .collect();
        // The calling thread takes the first chunk instead of only waiting.
        let mut results: Vec<R> = first.into_iter().map(work).collect();
        for handle in others {
            match handle.join() {
                Ok(part) => results.extend(part),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        results
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_keep_the_order_of_the_items_however_they_are_split() {
        for len in [0, 1, 31, 64, 65, 1000] {
            let items: Vec<usize> = (0..len).collect();
            let expected: Vec<usize> = items.iter().map(|i| i * 3).collect();
            assert_eq!(map_on_all_cores(items.clone(), |i| i * 3), expected, "{len} items");
            for threads in 2..5 {
                assert_eq!(spread(items.clone(), threads, &|i| i * 3), expected, "{len} items on {threads} threads");
            }
        }
    }
}
