package sigv4

import (
	"crypto/sha1"
	"crypto/sha256"
	"hash"
	"hash/crc32"

	"github.com/minio/crc64nvme"
)

// ChecksumLen returns the length of the base64 value of a checksum header
// (x-amz-checksum-crc32, -crc32c, -crc64nvme, -sha1, -sha256); ok is false
// for any other name. name must be lower-case.
func ChecksumLen(name string) (int, bool) {
	switch name {
	case "x-amz-checksum-crc32", "x-amz-checksum-crc32c":
		return 8, true
	case "x-amz-checksum-crc64nvme":
		return 12, true
	case "x-amz-checksum-sha1":
		return 28, true
	case "x-amz-checksum-sha256":
		return 44, true
	}
	return 0, false
}

// newChecksum returns the hash behind a checksum header name ChecksumLen
// knows, nil for any other.
func newChecksum(name string) hash.Hash {
	switch name {
	case "x-amz-checksum-crc32":
		return crc32.NewIEEE()
	case "x-amz-checksum-crc32c":
		return crc32.New(crc32.MakeTable(crc32.Castagnoli))
	case "x-amz-checksum-crc64nvme":
		return crc64nvme.New()
	case "x-amz-checksum-sha1":
		return sha1.New()
	case "x-amz-checksum-sha256":
		return sha256.New()
	}
	return nil
}
