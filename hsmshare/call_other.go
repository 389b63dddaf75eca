//go:build !unix

package hsmshare

import (
	"errors"
	"unsafe"

	"github.com/miekg/pkcs11"
)

// functionList is implemented only on Unix (see call_unix.go), like the
// store lock: opening a module fails elsewhere.
type functionList struct{}

func loadFunctionList(string) (*functionList, error) {
	return nil, errors.New("hsmshare: PKCS#11 modules are supported only on Unix systems")
}

func cString(string) unsafe.Pointer { return nil }

func freeCString(unsafe.Pointer) {}

func (*functionList) encrypt(pkcs11.SessionHandle, []byte, []byte) ([]byte, error) {
	return nil, errors.New("hsmshare: not supported on this system")
}

func (*functionList) decrypt(pkcs11.SessionHandle, []byte, []byte) ([]byte, error) {
	return nil, errors.New("hsmshare: not supported on this system")
}
