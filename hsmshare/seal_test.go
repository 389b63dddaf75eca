package hsmshare

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/miekg/pkcs11"
)

var testHeader = Header{Kind: "keyshare", KeyID: "key-1", PartyID: "12D3KooWParty", Version: 7}

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func TestSeal_RoundTripsEveryKindAndSize(t *testing.T) {
	ctx := context.Background()
	forEachProfile(t, func(t *testing.T, im impl, scheme Scheme) {
		k := newSealKey(t, im, scheme)
		for _, kind := range []string{"keyshare", "presignature", "preparams", "identity.meta", "x"} {
			for _, size := range []int{0, 1, 64 << 10} {
				hdr := Header{Kind: kind, KeyID: "k-" + fmt.Sprint(size), PartyID: "party", Version: uint64(size)}
				pt := randBytes(size)
				blob, err := k.Seal(ctx, hdr, pt)
				if err != nil {
					t.Fatalf("Seal %s/%d: %v", kind, size, err)
				}
				if size > 16 && bytes.Contains(blob, pt[:16]) {
					t.Fatalf("blob contains plaintext")
				}
				info, err := InspectBlob(blob)
				if err != nil {
					t.Fatalf("InspectBlob: %v", err)
				}
				if info.Header != hdr || info.Scheme != scheme || info.SealKeyID != k.ID() || info.Format != FormatVersion {
					t.Fatalf("InspectBlob = %+v", info)
				}
				got, err := k.Open(ctx, blob, hdr)
				if err != nil {
					t.Fatalf("Open %s/%d: %v", kind, size, err)
				}
				if !bytes.Equal(got, pt) {
					t.Fatalf("Open %s/%d returned different plaintext", kind, size)
				}
			}
		}
	})
}

// The output buffer of C_Encrypt is sized from the mechanism, not from the
// token's answer to a size query: NSS softoken answers that query for
// single-part AES-GCM with the plaintext length, no room for the tag, and
// sealing failed there with CKR_BUFFER_TOO_SMALL. Lengths around the block
// size exercise the CBC padding as well.
func TestSeal_OutputSizedByMechanism(t *testing.T) {
	ctx := context.Background()
	forEachProfile(t, func(t *testing.T, im impl, scheme Scheme) {
		k := newSealKey(t, im, scheme)
		for _, n := range []int{0, 1, 15, 16, 17, 31, 32, 4096, 4097} {
			pt := randBytes(n)
			blob, err := k.Seal(ctx, testHeader, pt)
			if err != nil {
				t.Fatalf("Seal %d bytes: %v", n, err)
			}
			p, err := parseBlob(blob)
			if err != nil {
				t.Fatal(err)
			}
			want := n + 16 // GCM: ciphertext || tag
			if scheme == SchemeCBCHMAC {
				want = (n/16 + 1) * 16 // PKCS#7 padding
			}
			if len(p.ct) != want {
				t.Fatalf("%d bytes sealed to %d bytes of ciphertext, want %d", n, len(p.ct), want)
			}
			got, err := k.Open(ctx, blob, testHeader)
			if err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("Open %d bytes: %v", n, err)
			}
		}
	})
}

func TestSeal_UsesFreshRandomIV(t *testing.T) {
	ctx := context.Background()
	forEachProfile(t, func(t *testing.T, im impl, scheme Scheme) {
		k := newSealKey(t, im, scheme)
		a, err := k.Seal(ctx, testHeader, []byte("same plaintext"))
		if err != nil {
			t.Fatal(err)
		}
		b, err := k.Seal(ctx, testHeader, []byte("same plaintext"))
		if err != nil {
			t.Fatal(err)
		}
		pa, _ := parseBlob(a)
		pb, _ := parseBlob(b)
		want := map[Scheme]int{SchemeGCM: 12, SchemeCBCHMAC: 16}[scheme]
		if len(pa.iv) != want {
			t.Fatalf("IV is %d bytes, want %d", len(pa.iv), want)
		}
		if bytes.Equal(pa.iv, pb.iv) || bytes.Equal(pa.ct, pb.ct) {
			t.Fatal("two seals of one plaintext share IV or ciphertext")
		}
		if scheme == SchemeGCM && len(pa.ct) != len("same plaintext")+16 {
			t.Fatalf("GCM ciphertext is %d bytes, want plaintext+16", len(pa.ct))
		}
	})
}

// regions of a blob, for the tamper test.
type region struct {
	name       string
	start, end int
	want       []error // acceptable errors when a byte in it changes
}

func blobRegions(t *testing.T, blob []byte) []region {
	t.Helper()
	p, err := parseBlob(blob)
	if err != nil {
		t.Fatal(err)
	}
	tampered := []error{ErrTampered}
	corrupt := []error{ErrCorrupted}
	either := []error{ErrTampered, ErrCorrupted}
	off := 0
	var rs []region
	add := func(name string, n int, want []error) {
		rs = append(rs, region{name, off, off + n, want})
		off += n
	}
	add("magic", 4, corrupt)
	add("format version", 1, []error{ErrUnsupportedFormat})
	add("scheme", 1, []error{ErrUnsupportedFormat, ErrCorrupted})
	add("seal key ID length", 1, corrupt)
	add("seal key ID", len(p.sealKeyID), tampered)
	add("kind length", 1, corrupt)
	add("kind", len(p.hdr.Kind), either) // a flipped bit may leave the charset
	add("key ID length", 1, corrupt)
	add("key ID", len(p.hdr.KeyID), either)
	add("party length", 1, corrupt)
	add("party", len(p.hdr.PartyID), either)
	add("version", 8, tampered)
	add("IV length", 1, corrupt)
	add("IV", len(p.iv), tampered)
	add("ciphertext length", 4, corrupt)
	add("ciphertext", len(p.ct), tampered)
	if p.scheme == SchemeCBCHMAC {
		add("MAC", len(p.mac), tampered)
	}
	if off != len(blob) {
		t.Fatalf("regions cover %d of %d bytes", off, len(blob))
	}
	return rs
}

func TestOpen_RejectsEveryTamperedByte(t *testing.T) {
	ctx := context.Background()
	forEachProfile(t, func(t *testing.T, im impl, scheme Scheme) {
		k := newSealKey(t, im, scheme)
		blob, err := k.Seal(ctx, testHeader, []byte("a 40-byte secret that must not come out"))
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range blobRegions(t, blob) {
			for i := r.start; i < r.end; i++ {
				for _, flip := range []byte{0x01, 0x80} {
					bad := bytes.Clone(blob)
					bad[i] ^= flip
					pt, err := k.Open(ctx, bad, testHeader)
					if pt != nil {
						t.Fatalf("%s byte %d ^%#x: Open returned plaintext", r.name, i, flip)
					}
					if !isOneOf(err, r.want) {
						t.Fatalf("%s byte %d ^%#x: Open error %v, want one of %v", r.name, i, flip, err, r.want)
					}
				}
			}
		}
		// The untouched blob still opens: the checks above failed for
		// the right reason.
		if _, err := k.Open(ctx, blob, testHeader); err != nil {
			t.Fatal(err)
		}
	})
}

func TestOpen_RejectsTruncatedOrExtendedBlob(t *testing.T) {
	ctx := context.Background()
	forEachProfile(t, func(t *testing.T, im impl, scheme Scheme) {
		k := newSealKey(t, im, scheme)
		blob, err := k.Seal(ctx, testHeader, []byte("secret"))
		if err != nil {
			t.Fatal(err)
		}
		for n := range len(blob) {
			if _, err := k.Open(ctx, blob[:n], testHeader); !errors.Is(err, ErrCorrupted) {
				t.Fatalf("blob cut to %d of %d bytes: %v, want ErrCorrupted", n, len(blob), err)
			}
		}
		if _, err := k.Open(ctx, append(bytes.Clone(blob), 0), testHeader); !errors.Is(err, ErrCorrupted) {
			t.Fatalf("blob with a trailing byte: %v, want ErrCorrupted", err)
		}
	})
}

// otherHeaders returns hdr with each bound field changed in turn.
func otherHeaders(hdr Header) map[string]Header {
	m := map[string]Header{}
	h := hdr
	h.Kind = "presignature"
	m["kind"] = h
	h = hdr
	h.KeyID = hdr.KeyID + "x"
	m["key ID"] = h
	h = hdr
	h.PartyID = hdr.PartyID + "x"
	m["party"] = h
	h = hdr
	h.Version = hdr.Version + 1
	m["version"] = h
	h = hdr
	h.Version = hdr.Version - 1
	m["older version"] = h
	return m
}

func TestOpen_RejectsBlobForAnotherHeader(t *testing.T) {
	ctx := context.Background()
	forEachProfile(t, func(t *testing.T, im impl, scheme Scheme) {
		k := newSealKey(t, im, scheme)
		blob, err := k.Seal(ctx, testHeader, []byte("secret"))
		if err != nil {
			t.Fatal(err)
		}
		for field, want := range otherHeaders(testHeader) {
			if pt, err := k.Open(ctx, blob, want); !errors.Is(err, ErrTampered) || pt != nil {
				t.Errorf("open with another %s: %v, want ErrTampered", field, err)
			}
		}
	})
}

// reheader rebuilds blob with a different header but the same IV,
// ciphertext and MAC: what an attacker who moves a blob and rewrites its
// clear header would produce.
func reheader(t *testing.T, blob []byte, sealKeyID []byte, hdr Header) []byte {
	t.Helper()
	p, err := parseBlob(blob)
	if err != nil {
		t.Fatal(err)
	}
	out := appendBody(appendHeader(nil, p.scheme, sealKeyID, hdr), p.iv, p.ct)
	return append(out, p.mac...)
}

// The header check in Open is not what stops a moved blob: the header is
// authenticated by the token (GCM AAD or the HMAC), so a blob whose clear
// header was rewritten to match fails too.
func TestOpen_HeaderIsCryptographicallyBound(t *testing.T) {
	ctx := context.Background()
	forEachProfile(t, func(t *testing.T, im impl, scheme Scheme) {
		k := newSealKey(t, im, scheme)
		blob, err := k.Seal(ctx, testHeader, []byte("secret"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := k.Open(ctx, reheader(t, blob, k.id, testHeader), testHeader); err != nil {
			t.Fatalf("re-encoding the same header broke the blob: %v", err)
		}
		for field, h := range otherHeaders(testHeader) {
			forged := reheader(t, blob, k.id, h)
			pt, err := k.Open(ctx, forged, h)
			if pt != nil || !errors.Is(err, ErrTampered) {
				t.Errorf("blob moved to another %s: %v, want ErrTampered", field, err)
			}
		}
	})
}

func TestOpen_RejectsBlobFromAnotherToken(t *testing.T) {
	ctx := context.Background()
	forEachProfile(t, func(t *testing.T, im impl, scheme Scheme) {
		toks := im.newTokens(t, 2)
		a := openToken(t, toks[0], withScheme(scheme))
		b := openToken(t, toks[1], withScheme(scheme))
		ka, err := a.CreateSealKey(ctx, "seal")
		if err != nil {
			t.Fatal(err)
		}
		kb, err := b.CreateSealKey(ctx, "seal") // same label, other token
		if err != nil {
			t.Fatal(err)
		}
		blob, err := ka.Seal(ctx, testHeader, []byte("secret of party a"))
		if err != nil {
			t.Fatal(err)
		}
		if pt, err := kb.Open(ctx, blob, testHeader); pt != nil || !errors.Is(err, ErrTampered) {
			t.Fatalf("open token A's blob with token B: %v, want ErrTampered", err)
		}
		// Rewriting the blob to name B's key does not help either.
		forged := reheader(t, blob, kb.id, testHeader)
		if pt, err := kb.Open(ctx, forged, testHeader); pt != nil || !errors.Is(err, ErrTampered) {
			t.Fatalf("open token A's blob relabelled for B: %v, want ErrTampered", err)
		}
	})
}

func TestSeal_RejectsBadHeader(t *testing.T) {
	ctx := context.Background()
	k := newSealKey(t, softHSM2, SchemeGCM)
	for _, h := range []Header{
		{Kind: "", KeyID: "k", PartyID: "p"},
		{Kind: "KeyShare", KeyID: "k", PartyID: "p"},
		{Kind: "k/../x", KeyID: "k", PartyID: "p"},
		{Kind: "..", KeyID: "k", PartyID: "p"},
		{Kind: "k", KeyID: string(make([]byte, 129)), PartyID: "p"},
		{Kind: "k", KeyID: "k", PartyID: ""},
		{Kind: "k", KeyID: "k", PartyID: "has space"},
	} {
		if _, err := k.Seal(ctx, h, []byte("x")); !errors.Is(err, ErrInvalidName) {
			t.Errorf("Seal(%+v): %v, want ErrInvalidName", h, err)
		}
		if _, err := k.Open(ctx, []byte("KQSB"), h); !errors.Is(err, ErrInvalidName) {
			t.Errorf("Open(%+v): %v, want ErrInvalidName", h, err)
		}
	}
}

func TestSeal_32GoroutinesAtOnce(t *testing.T) {
	ctx := context.Background()
	forEachProfile(t, func(t *testing.T, im impl, scheme Scheme) {
		k := newSealKey(t, im, scheme)
		var wg sync.WaitGroup
		for g := range 32 {
			wg.Go(func() {
				for i := range 10 {
					hdr := Header{Kind: "keyshare", KeyID: fmt.Sprintf("g%d", g), PartyID: "p", Version: uint64(i)}
					pt := randBytes(100 + g)
					blob, err := k.Seal(ctx, hdr, pt)
					if err != nil {
						t.Errorf("Seal: %v", err)
						return
					}
					got, err := k.Open(ctx, blob, hdr)
					if err != nil || !bytes.Equal(got, pt) {
						t.Errorf("Open: %v", err)
						return
					}
				}
			})
		}
		wg.Wait()
	})
}

func TestSeal_HonoursContext(t *testing.T) {
	k := newSealKey(t, softHSM2, SchemeGCM)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := k.Seal(ctx, testHeader, []byte("x")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Seal with a cancelled context: %v", err)
	}
}

func TestSealScheme_FallsBackWithoutGCM(t *testing.T) {
	forEachImpl(t, testSealSchemeFallsBackWithoutGCM)
}

func testSealSchemeFallsBackWithoutGCM(t *testing.T, im impl) {
	ctx := context.Background()
	tk := openToken(t, im.newToken(t))
	gcmKey, err := tk.CreateSealKey(ctx, "gcm")
	if err != nil {
		t.Fatal(err)
	}
	gcmBlob, err := gcmKey.Seal(ctx, testHeader, []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	// Pretend the token never listed CKM_AES_GCM, as opencryptoki's soft
	// token does; the fallback itself then runs on the real token.
	delete(tk.mechs, pkcs11.CKM_AES_GCM)
	if s, err := tk.sealScheme(); err != nil || s != SchemeCBCHMAC {
		t.Fatalf("auto scheme without GCM = %v, %v; want CBC+HMAC", s, err)
	}
	k, err := tk.CreateSealKey(ctx, "fallback")
	if err != nil {
		t.Fatal(err)
	}
	blob, err := k.Seal(ctx, testHeader, []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	if info, _ := InspectBlob(blob); info.Scheme != SchemeCBCHMAC {
		t.Fatalf("blob scheme %v", info.Scheme)
	}
	// A GCM blob cannot be opened without GCM: a clear mechanism error.
	var me *MechanismError
	if _, err := gcmKey.Open(ctx, gcmBlob, testHeader); !errors.As(err, &me) || me.Mechanism != "CKM_AES_GCM" || !errors.Is(err, ErrMechanismMissing) {
		t.Fatalf("open GCM blob without GCM: %v, want MechanismError for CKM_AES_GCM", err)
	}
	tk.scheme = SchemeGCM
	if _, err := tk.CreateSealKey(ctx, "must-fail"); !errors.As(err, &me) || me.Mechanism != "CKM_AES_GCM" {
		t.Fatalf("CreateSealKey with SchemeGCM on a token without GCM: %v", err)
	}
	tk.scheme = SchemeAuto
	delete(tk.mechs, pkcs11.CKM_SHA256_HMAC)
	if _, err := tk.SealKey(ctx, "fallback"); !errors.Is(err, ErrMechanismMissing) {
		t.Fatalf("SealKey on a token with neither GCM nor HMAC: %v, want ErrMechanismMissing", err)
	}
}

func TestSealKey_CBCHMACNeedsCompanionKey(t *testing.T) {
	forEachImpl(t, testSealKeyCBCHMACNeedsCompanionKey)
}

func testSealKeyCBCHMACNeedsCompanionKey(t *testing.T, im impl) {
	ctx := context.Background()
	tk := openToken(t, im.newToken(t))
	if _, err := tk.CreateSealKey(ctx, "gcm-only"); err != nil {
		t.Fatal(err)
	}
	tk.scheme = SchemeCBCHMAC
	if _, err := tk.SealKey(ctx, "gcm-only"); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("SealKey under CBC+HMAC for a key without HMAC companion: %v, want ErrKeyNotFound", err)
	}
	// A key created under CBC+HMAC opens both kinds of blob under auto.
	k, err := tk.CreateSealKey(ctx, "both")
	if err != nil {
		t.Fatal(err)
	}
	cbcBlob, err := k.Seal(ctx, testHeader, []byte("cbc"))
	if err != nil {
		t.Fatal(err)
	}
	tk.scheme = SchemeAuto
	k2, err := tk.SealKey(ctx, "both")
	if err != nil {
		t.Fatal(err)
	}
	if k2.Scheme() != SchemeGCM {
		t.Fatalf("auto scheme on %s = %v, want GCM", im.name, k2.Scheme())
	}
	if pt, err := k2.Open(ctx, cbcBlob, testHeader); err != nil || string(pt) != "cbc" {
		t.Fatalf("open CBC+HMAC blob with the key loaded under auto: %v", err)
	}
}

func isOneOf(err error, targets []error) bool {
	for _, t := range targets {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}

// FuzzParseBlob checks that the blob parser never panics and accepts only
// canonical encodings: whatever it accepts re-encodes to the same bytes.
func FuzzParseBlob(f *testing.F) {
	gcm := appendBody(appendHeader(nil, SchemeGCM, []byte{1, 2, 3}, testHeader), make([]byte, 12), make([]byte, 20))
	cbc := append(appendBody(appendHeader(nil, SchemeCBCHMAC, []byte{1}, testHeader), make([]byte, 16), make([]byte, 32)), make([]byte, 32)...)
	f.Add(gcm)
	f.Add(cbc)
	f.Add([]byte("KQSB"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := parseBlob(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupted) && !errors.Is(err, ErrUnsupportedFormat) {
				t.Fatalf("parse error %v is neither ErrCorrupted nor ErrUnsupportedFormat", err)
			}
			return
		}
		re := append(appendBody(appendHeader(nil, p.scheme, p.sealKeyID, p.hdr), p.iv, p.ct), p.mac...)
		if !bytes.Equal(re, b) {
			t.Fatalf("accepted a non-canonical blob")
		}
	})
}

// FuzzOpenBlob feeds mutated blobs to Open on a real SoftHSM2 key: nothing
// but the untouched blob may open, and every failure is one of the
// documented errors.
func FuzzOpenBlob(f *testing.F) {
	ctx := context.Background()
	tk := openToken(f, softHSM2.newToken(f))
	gcmKey, err := tk.CreateSealKey(ctx, "seal")
	if err != nil {
		f.Fatal(err)
	}
	tk.scheme = SchemeCBCHMAC
	cbcKey, err := tk.CreateSealKey(ctx, "seal-cbc")
	if err != nil {
		f.Fatal(err)
	}
	gcmBlob, err := gcmKey.Seal(ctx, testHeader, []byte("fuzz secret"))
	if err != nil {
		f.Fatal(err)
	}
	cbcBlob, err := cbcKey.Seal(ctx, testHeader, []byte("fuzz secret"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(gcmBlob, false)
	f.Add(cbcBlob, true)
	f.Add(gcmBlob[:len(gcmBlob)-1], false)
	f.Add(cbcBlob[:40], true)
	f.Fuzz(func(t *testing.T, b []byte, useCBC bool) {
		k, orig := gcmKey, gcmBlob
		if useCBC {
			k, orig = cbcKey, cbcBlob
		}
		pt, err := k.Open(ctx, b, testHeader)
		if err == nil {
			if !bytes.Equal(b, orig) || string(pt) != "fuzz secret" {
				t.Fatalf("Open accepted a blob that was not sealed by the key")
			}
			return
		}
		if pt != nil {
			t.Fatalf("Open returned plaintext with an error")
		}
		if !isOneOf(err, []error{ErrTampered, ErrCorrupted, ErrUnsupportedFormat, ErrKeyNotFound}) {
			t.Fatalf("Open error %v is not a documented one", err)
		}
	})
}
