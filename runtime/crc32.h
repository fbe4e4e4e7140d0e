/* CRC-32 (IEEE, zlib's crc32): the checksum of every .twr/.twi section. */
#ifndef TOWERRT_CRC32_H
#define TOWERRT_CRC32_H
#include <stddef.h>
#include <stdint.h>
/* crc = trt_crc32(0, data, n) for a fresh CRC; pass the result back to chain. */
uint32_t trt_crc32(uint32_t crc, const void *data, size_t n);
/* CRC-32 of A || B from crc(A), crc(B) and the length of B (zlib's
 * crc32_combine): sections written in pieces by several threads. */
uint32_t trt_crc32_combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b);
#endif
