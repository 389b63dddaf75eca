package hsmshare_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/keyquorum/keyquorum/hsmshare"
	"github.com/keyquorum/keyquorum/internal/softhsm"
)

// exampleToken creates a throw-away SoftHSM2 token so the examples run; a
// deployment opens its real HSM instead (see the README).
func exampleToken() (cfg hsmshare.Config, dir string, cleanup func()) {
	dir, err := os.MkdirTemp("", "hsmshare-example")
	if err != nil {
		log.Fatal(err)
	}
	d, err := softhsm.CreateDir(dir)
	if err != nil {
		log.Fatal(err)
	}
	tok, err := d.CreateToken()
	if err != nil {
		log.Fatal(err)
	}
	prev, had := os.LookupEnv("SOFTHSM2_CONF")
	os.Setenv("SOFTHSM2_CONF", d.ConfPath)
	pinFile := filepath.Join(dir, "pin")
	if err := os.WriteFile(pinFile, []byte(tok.PIN+"\n"), 0o600); err != nil {
		log.Fatal(err)
	}
	cfg = hsmshare.Config{
		URI: fmt.Sprintf("pkcs11:token=%s?module-path=%s&pin-source=file:%s", tok.Label, d.Module, pinFile),
	}
	return cfg, dir, func() {
		if had {
			os.Setenv("SOFTHSM2_CONF", prev)
		} else {
			os.Unsetenv("SOFTHSM2_CONF")
		}
		os.RemoveAll(dir)
	}
}

// Seal a secret under a key that never leaves the token, and open it again.
func Example() {
	cfg, _, cleanup := exampleToken()
	defer cleanup()
	ctx := context.Background()

	tok, err := hsmshare.Open(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer tok.Close()
	key, err := tok.CreateSealKey(ctx, "site-a-seal")
	if err != nil {
		log.Fatal(err)
	}
	hdr := hsmshare.Header{Kind: "keyshare", KeyID: "treasury", PartyID: "site-a", Version: 1}
	blob, err := key.Seal(ctx, hdr, []byte("share bytes"))
	if err != nil {
		log.Fatal(err)
	}
	info, _ := hsmshare.InspectBlob(blob)
	fmt.Println("sealed with", info.Scheme)

	plain, err := key.Open(ctx, blob, hdr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s\n", plain)

	// The same blob does not open as another party's.
	hdr.PartyID = "site-b"
	_, err = key.Open(ctx, blob, hdr)
	fmt.Println(errors.Is(err, hsmshare.ErrTampered))
	// Output:
	// sealed with aes-256-gcm
	// share bytes
	// true
}

// Keep versioned secrets in a sealed store on disk.
func ExampleOpenStore() {
	cfg, dir, cleanup := exampleToken()
	defer cleanup()
	ctx := context.Background()

	tok, err := hsmshare.Open(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer tok.Close()
	key, err := tok.CreateSealKey(ctx, "site-a-seal")
	if err != nil {
		log.Fatal(err)
	}
	st, err := hsmshare.OpenStore(filepath.Join(dir, "store"), key, "site-a")
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()

	if err := st.Put(ctx, "keyshare", "treasury", 1, []byte("old share")); err != nil {
		log.Fatal(err)
	}
	if err := st.Put(ctx, "keyshare", "treasury", 2, []byte("new share")); err != nil {
		log.Fatal(err)
	}
	data, version, err := st.Get(ctx, "keyshare", "treasury")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("version %d: %s\n", version, data)
	// Give up the old version once the new one is confirmed.
	if err := st.Prune(ctx, "keyshare", "treasury", 2); err != nil {
		log.Fatal(err)
	}
	versions, _ := st.Versions(ctx, "keyshare", "treasury")
	fmt.Println(versions)
	// Output:
	// version 2: new share
	// [2]
}

// Move every record of a store to a new seal key, then destroy the old one.
func ExampleStore_Rotate() {
	cfg, dir, cleanup := exampleToken()
	defer cleanup()
	ctx := context.Background()

	tok, err := hsmshare.Open(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer tok.Close()
	oldKey, err := tok.CreateSealKey(ctx, "seal-2025")
	if err != nil {
		log.Fatal(err)
	}
	st, err := hsmshare.OpenStore(filepath.Join(dir, "store"), oldKey, "site-a")
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	if err := st.Put(ctx, "keyshare", "treasury", 1, []byte("share")); err != nil {
		log.Fatal(err)
	}

	newKey, err := tok.CreateSealKey(ctx, "seal-2026")
	if err != nil {
		log.Fatal(err)
	}
	if err := st.Rotate(ctx, newKey); err != nil {
		log.Fatal(err) // safe to retry: every record is still readable
	}
	if err := oldKey.Destroy(ctx); err != nil {
		log.Fatal(err)
	}
	data, _, err := st.Get(ctx, "keyshare", "treasury")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s, sealed under %s\n", data, st.SealKey().Label())
	// Output: share, sealed under seal-2026
}

// Use the HSM identity key as a crypto.Signer.
func ExampleToken_CreateIdentity() {
	cfg, _, cleanup := exampleToken()
	defer cleanup()
	ctx := context.Background()

	tok, err := hsmshare.Open(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer tok.Close()
	id, err := tok.CreateIdentity(ctx, "site-a-identity")
	if err != nil {
		log.Fatal(err)
	}
	var signer crypto.Signer = id
	digest := sha256.Sum256([]byte("hello"))
	sig, err := signer.Sign(nil, digest[:], crypto.SHA256)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ecdsa.VerifyASN1(signer.Public().(*ecdsa.PublicKey), digest[:], sig))
	// Output: true
}
