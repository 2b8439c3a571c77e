// Package batch is the runtime's adaptive batcher for Open Inference
// Protocol v2 requests (KServe's own batcher only understands v1).
//
// A Batcher wraps one model's Engine. Concurrent requests whose inputs agree
// on names, datatypes and every dimension but the first are joined along
// dimension 0 into a single run, and each output is split back by rows, so
// every caller gets exactly its own rows and its own error.
//
// When a queued group is dispatched:
//   - at once, on the caller's own goroutine, when the model has no run in
//     flight: an idle model never makes a request wait, so batching costs
//     nothing at low load;
//   - when the group reaches MaxBatchSize rows;
//   - when its oldest request has waited MaxBatchTime while other runs were
//     in flight.
//
// Under load the queue therefore fills while the engine is busy, and batch
// size adapts to the arrival rate with no tuning.
//
// Requests that cannot be joined safely run alone with their own context:
// an input without a first dimension, inputs disagreeing on the row count,
// tensors whose data does not fit their shape (the engine then reports the
// error exactly as it would without batching), and requests with more rows
// than MaxBatchSize. If a joined run fails (an engine panic included: runs
// started from the queue have no server recovery above them, so the batcher
// turns a panic into an error), every member still waiting is re-run on its
// own so that only the faulty request fails. If a joined run's
// outputs are not row-aligned (an output whose first dimension is not the
// total row count), the members are re-run on their own and the batcher stops
// joining for that model, since its outputs cannot be split.
//
// A caller whose context ends while queued is removed from its group; one
// whose context ends while its batch runs returns at once and its rows of the
// result are dropped. A joined run is cancelled only when all its members
// have left.
//
// The engine must be safe for concurrent use, must not keep its input slices
// after Infer returns (joined inputs live in pooled buffers) and must not
// return outputs that alias its inputs.
package batch
