// chaosdrill-cuda-victim: a tiny CUDA workload linked against the *dynamic* CUDA runtime,
// the target of gpu.cuda_errors in the self-test (and, linked against a fake runtime, in
// the tests). It declares the two calls it uses itself instead of including CUDA headers,
// so the same source links against libcudart.so or a stand-in.
//
// Reads commands on stdin, one per line, and answers one line each on stdout:
//   malloc <count> <bytes>  ->  calls=<count> failures=<n> last_error=<code>
//                               (each successful cudaMalloc is freed right away)
//   quit
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <string>

extern "C" int cudaMalloc(void** ptr, size_t size);
extern "C" int cudaFree(void* ptr);

int main() {
  char line[256];
  while (std::fgets(line, sizeof(line), stdin) != nullptr) {
    unsigned long count = 0, bytes = 0;
    if (std::strncmp(line, "quit", 4) == 0) return 0;
    if (std::sscanf(line, "malloc %lu %lu", &count, &bytes) == 2) {
      unsigned long failures = 0;
      int last_error = 0;
      for (unsigned long i = 0; i < count; ++i) {
        void* p = nullptr;
        int err = cudaMalloc(&p, bytes);
        if (err != 0) {
          ++failures;
          last_error = err;
        } else {
          cudaFree(p);
        }
      }
      std::printf("calls=%lu failures=%lu last_error=%d\n", count, failures, last_error);
    } else {
      std::printf("error=unknown command\n");
    }
    std::fflush(stdout);
  }
  return 0;
}
