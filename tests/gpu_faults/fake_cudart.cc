// A stand-in for libcudart.so in tests: exports cudaMalloc/cudaFree that always succeed,
// with symbols versioned like the real library's (fake_cudart.map), so a victim linked
// against it resolves them through the dynamic linker exactly as it would the real ones,
// and LD_PRELOAD interposition can be tested on a machine without a GPU.
#include <cstddef>

namespace {
char fake_device_memory[16];
}

extern "C" __attribute__((visibility("default"))) int cudaMalloc(void** ptr, size_t /*size*/) {
  *ptr = fake_device_memory;
  return 0;
}

extern "C" __attribute__((visibility("default"))) int cudaFree(void* /*ptr*/) { return 0; }
