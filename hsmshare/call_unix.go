//go:build unix

package hsmshare

// Two things miekg/pkcs11 v1.1.2 cannot do are done here with a few lines
// of C, next to it and on the same loaded library:
//
//   - C_Encrypt and C_Decrypt into a buffer this package sized. miekg's
//     Encrypt and Decrypt first ask the token for the output length
//     (pOut = NULL) and trust the answer. NSS softoken 3.87 answers that
//     question for single-part CKM_AES_GCM encryption with the plaintext
//     length, without room for the 16-byte tag, so the real call then fails
//     with CKR_BUFFER_TOO_SMALL. The output lengths of GCM and CBC-PAD are
//     known in advance (PKCS#11 v2.40 current mechanisms, "AES-GCM" and
//     "AES-CBC with PKCS padding"), so one call with a buffer of that size
//     is both correct on every token and one call fewer. The plaintext of
//     a decryption lands in a Go buffer this package wipes, not in a C
//     buffer freed without wiping.
//   - Keeping the C copy of the module initialization arguments
//     (CK_C_INITIALIZE_ARGS.pReserved) alive until C_Finalize.
//
// The function list comes from the module's own C_GetFunctionList: dlopen
// of a library that is already loaded returns the handle miekg/pkcs11 got,
// so the calls reach the same initialized library. Only the start of
// CK_FUNCTION_LIST is declared: a CK_VERSION followed by the function
// pointers in the order of the PKCS#11 v2.40 base specification (section
// 5.16, pkcs11f.h), where C_Encrypt is the 31st and C_Decrypt the 35th.
// PKCS#11 3.0 keeps that order and appends its new functions.

/*
#cgo linux LDFLAGS: -ldl
#cgo freebsd LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdlib.h>

typedef unsigned long kq_ulong;  // CK_ULONG, CK_RV, CK_SESSION_HANDLE on Unix
typedef kq_ulong (*kq_fn)(void);
typedef kq_ulong (*kq_crypt_fn)(kq_ulong session, unsigned char *in, kq_ulong in_len,
                                unsigned char *out, kq_ulong *out_len);
typedef kq_ulong (*kq_get_list_fn)(void **list);

struct kq_function_list {
	unsigned char version[2];   // CK_VERSION: major, minor
	kq_fn first[30];            // C_Initialize ... C_EncryptInit
	kq_crypt_fn encrypt;        // C_Encrypt
	kq_fn between[3];           // C_EncryptUpdate, C_EncryptFinal, C_DecryptInit
	kq_crypt_fn decrypt;        // C_Decrypt
};

static void *kq_function_list(const char *path) {
	void *h = dlopen(path, RTLD_LAZY);
	if (h == NULL) {
		return NULL;
	}
	kq_get_list_fn get = (kq_get_list_fn)dlsym(h, "C_GetFunctionList");
	void *list = NULL;
	if (get == NULL || get(&list) != 0) {
		return NULL;
	}
	return list;
}

static kq_ulong kq_encrypt(void *list, kq_ulong session, unsigned char *in, kq_ulong in_len,
                           unsigned char *out, kq_ulong *out_len) {
	return ((struct kq_function_list *)list)->encrypt(session, in, in_len, out, out_len);
}

static kq_ulong kq_decrypt(void *list, kq_ulong session, unsigned char *in, kq_ulong in_len,
                           unsigned char *out, kq_ulong *out_len) {
	return ((struct kq_function_list *)list)->decrypt(session, in, in_len, out, out_len);
}
*/
import "C"

import (
	"fmt"
	"unsafe"

	"github.com/miekg/pkcs11"
)

// functionList is the module's CK_FUNCTION_LIST.
type functionList struct{ p unsafe.Pointer }

// loadFunctionList returns the function list of the (already loaded)
// module at path.
func loadFunctionList(path string) (*functionList, error) {
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	p := C.kq_function_list(cpath)
	if p == nil {
		return nil, fmt.Errorf("%w: %s: C_GetFunctionList failed", ErrModuleNotFound, path)
	}
	return &functionList{p: p}, nil
}

// cString returns a C copy of s for the module; free it with freeCString.
func cString(s string) unsafe.Pointer { return unsafe.Pointer(C.CString(s)) }

func freeCString(p unsafe.Pointer) { C.free(p) }

// one stands in for the input of an empty message: some tokens refuse a
// NULL data pointer even with length 0.
var one = []byte{0}

func bytePtr(b []byte) *C.uchar {
	if len(b) == 0 {
		b = one
	}
	return (*C.uchar)(unsafe.Pointer(&b[0]))
}

// encrypt runs C_Encrypt of the session's initialized operation on in,
// writing into out, and returns the bytes written. Passing Go memory is
// allowed: neither buffer holds Go pointers and the module keeps neither
// after the call (cgo pointer rules).
func (f *functionList) encrypt(sh pkcs11.SessionHandle, in, out []byte) ([]byte, error) {
	n := C.kq_ulong(len(out))
	rv := C.kq_encrypt(f.p, C.kq_ulong(sh), bytePtr(in), C.kq_ulong(len(in)), bytePtr(out), &n)
	return finish(rv, n, out)
}

// decrypt is encrypt for C_Decrypt. out receives plaintext: on failure
// (a token may write before it checks the tag) all of it is wiped, on
// success the part past the plaintext.
func (f *functionList) decrypt(sh pkcs11.SessionHandle, in, out []byte) ([]byte, error) {
	n := C.kq_ulong(len(out))
	rv := C.kq_decrypt(f.p, C.kq_ulong(sh), bytePtr(in), C.kq_ulong(len(in)), bytePtr(out), &n)
	pt, err := finish(rv, n, out)
	if err != nil {
		wipe(out)
		return nil, err
	}
	wipe(out[len(pt):])
	return pt, nil
}

func finish(rv C.kq_ulong, n C.kq_ulong, out []byte) ([]byte, error) {
	if rv != 0 {
		if uint(rv) == pkcs11.CKR_BUFFER_TOO_SMALL {
			return nil, fmt.Errorf("token wants %d bytes of output, more than the %d the mechanism produces: %w", uint64(n), len(out), pkcs11.Error(rv))
		}
		return nil, pkcs11.Error(rv)
	}
	if uint64(n) > uint64(len(out)) {
		// A token claiming to have written past the buffer it was given.
		return nil, fmt.Errorf("token reported %d bytes of output in a %d-byte buffer", uint64(n), len(out))
	}
	return out[:n], nil
}
