// The CPU threads the engine's kernels use (OpenMP loops, Eigen's products, and OpenBLAS when
// it is linked), set in one call — what an embedder needs when gradhpo runs inside a training
// job that has its own thread budget.
#pragma once

namespace gradhpo {

/// Sets the threads of the engine's CPU kernels to n >= 1, or back to the default with n = 0:
/// what OpenMP chose when the process started (OMP_NUM_THREADS, or one per core). Throws Error
/// for n < 0. The engine's own kernels give the same bits on any number of threads
/// (kernels/cpu.h); a matrix product may not, where the GEMM planner chose another library for
/// its shape at this thread count (kernels/gemm.h). Like the rest of the engine, call it from
/// the thread that drives the tape, not while a kernel runs.
void set_num_threads(int n);
/// The threads the kernels use now (1 in a build without OpenMP).
int num_threads();

}  // namespace gradhpo
