/* fatbin.h - reader for the device-code containers nvcc embeds in programs and cudart registers:
 * the fatbin wrapper (__fatBinC_Wrapper_t, magic 0x466243B1), the fatbin itself (magic 0xBA55ED50)
 * with its PTX / ELF entries, LZ4 and ZSTD entry compression, plain PTX text and ELF cubins.
 * Called by the module loader (emu_module.c) and the fatbin unit test; no driver state, no CUDA calls.
 */
#ifndef TF_EMU_FATBIN_H
#define TF_EMU_FATBIN_H

#include <stddef.h>
#include <stdint.h>

#define FATBIN_WRAPPER_MAGIC 0x466243B1u
#define FATBIN_MAGIC 0xBA55ED50u
#define FATBIN_KIND_PTX 1
#define FATBIN_KIND_ELF 2
#define FATBIN_FLAG_COMPRESSED_LZ4 0x2000ull  /* nvcc -compress-mode=speed */
#define FATBIN_FLAG_COMPRESSED_ZSTD 0x8000ull /* nvcc default, -compress-mode=size|balance */

enum fatbin_image_kind { IMAGE_UNKNOWN = 0, IMAGE_WRAPPER, IMAGE_FATBIN, IMAGE_ELF, IMAGE_PTX };

/* What the bytes at image are. len = bytes known readable, or 0 when unknown (in-memory image). */
int fatbin_image_kind(const void *image, size_t len);

/* Extracts NUL-terminated PTX text from any image kind (wrapper, fatbin, PTX text). Picks the PTX
 * entry with the highest arch <= max_sm, else the lowest PTX arch present. Returns a CUresult:
 * 0 with *ptx malloc'd (caller frees) and *ptx_len; CUDA_ERROR_NO_BINARY_FOR_GPU when the image has
 * only SASS/ELF (log says to build with a PTX target); CUDA_ERROR_INVALID_IMAGE on a malformed image.
 * *arch (optional) receives the chosen entry's sm number. */
int fatbin_extract_ptx(const void *image, size_t len, unsigned max_sm, char **ptx, size_t *ptx_len,
                       unsigned *arch, char *log, size_t loglen);

/* LZ4 block format decoder. Returns bytes written, or -1 on malformed input / overflow of dstcap. */
long fatbin_lz4_decompress(const uint8_t *src, size_t srclen, uint8_t *dst, size_t dstcap);
/* ZSTD frame decoder (the system libzstd.so.1, loaded on first use). Same return convention;
 * -2 when libzstd is unavailable. */
long fatbin_zstd_decompress(const uint8_t *src, size_t srclen, uint8_t *dst, size_t dstcap);

#endif
