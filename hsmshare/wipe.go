package hsmshare

import (
	"runtime"
	"unsafe"
)

// wipe overwrites b with zeros. It is best effort: Go may have copied the
// bytes elsewhere (for example when a slice grew), and memory handed to the
// PKCS#11 library through cgo is outside our reach.
func wipe(b []byte) {
	clear(b)
	runtime.KeepAlive(b)
}

// unsafeString views b as a string without copying. The result must not be
// kept after b is wiped or reused; it exists only to hand a PIN to
// miekg/pkcs11's Login, which takes a string and copies it at once.
func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}
