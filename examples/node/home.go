package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/keyquorum/keyquorum/hsmshare"
)

// A site's home directory (--home DIR):
//
//	DIR/             mode 0700
//	  config.json    how to reach the HSM token (module, label, PIN source;
//	                 never the PIN), the site's peer ID; written by init
//	  store/         the sealed store (hsmshare.Store), mode 0700
//	  api-token      the control API's bearer token, mode 0600
//	  api.json       where the running site's API listens; written by run
//	                 once it listens, removed when it stops
const (
	configFile   = "config.json"
	storeDirName = "store"
	tokenFile    = "api-token"
	apiFile      = "api.json"
)

// siteConfig is DIR/config.json.
type siteConfig struct {
	Version int    `json:"version"`
	Module  string `json:"module"`
	// ModuleInitArgs are the module's initialization arguments
	// (hsmshare.Config.ModuleInitArgs), for modules that need them such as
	// NSS softoken; empty for most.
	ModuleInitArgs    string `json:"module_init_args,omitempty"`
	Token             string `json:"token"`
	TokenSerial       string `json:"token_serial,omitempty"`
	PINSource         string `json:"pin_source"`
	SealKeyLabel      string `json:"seal_key_label"`
	IdentityLabel     string `json:"identity_label"`
	PeerID            string `json:"peer_id"`
	IdentityPublicKey string `json:"identity_public_key"`
	// TestFixtures records that pre-parameter test fixtures (public
	// secrets) were imported into this site: keys it makes must never
	// hold value.
	TestFixtures bool `json:"test_fixtures,omitempty"`
	// ImportedFixtures are the SHA-256 digests of the fixture files
	// imported, so that init never imports one twice.
	ImportedFixtures []string `json:"imported_fixtures,omitempty"`
}

// hsm returns how to open the site's token.
func (c *siteConfig) hsm() hsmshare.Config {
	return hsmshare.Config{ModulePath: c.Module, ModuleInitArgs: c.ModuleInitArgs,
		TokenLabel: c.Token, TokenSerial: c.TokenSerial, PINSource: c.PINSource}
}

// apiInfo is DIR/api.json.
type apiInfo struct {
	Addr   string `json:"addr"`
	PID    int    `json:"pid"`
	PeerID string `json:"peer_id"`
}

type home struct{ dir string }

func (h home) path(name string) string { return filepath.Join(h.dir, name) }

func (h home) storeDir() string { return h.path(storeDirName) }

// loadConfig reads DIR/config.json; a missing file means init has not run.
func (h home) loadConfig() (*siteConfig, error) {
	b, err := os.ReadFile(h.path(configFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s is not a site home (no %s): run `kqnode init --home %s ...` first", h.dir, configFile, h.dir)
	}
	if err != nil {
		return nil, err
	}
	var c siteConfig
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("%s: %w", h.path(configFile), err)
	}
	if c.Version != 1 {
		return nil, fmt.Errorf("%s: unsupported version %d", h.path(configFile), c.Version)
	}
	return &c, nil
}

func (h home) saveConfig(c *siteConfig) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(h.path(configFile), append(b, '\n'), 0o600)
}

// apiToken returns the API token, creating it if create is set and it does
// not exist. A token file that others can read is refused.
func (h home) apiToken(create bool) (string, error) {
	p := h.path(tokenFile)
	fi, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) && create {
		var b [32]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", err
		}
		tok := hex.EncodeToString(b[:])
		if err := writeFileAtomic(p, []byte(tok+"\n"), 0o600); err != nil {
			return "", err
		}
		return tok, nil
	}
	if err != nil {
		return "", fmt.Errorf("read API token: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("API token %s is accessible to other users (mode %v): run chmod 600 %s", p, fi.Mode().Perm(), p)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return "", fmt.Errorf("read API token: %w", err)
	}
	tok := string(trimNewline(b))
	if len(tok) == 0 {
		return "", fmt.Errorf("API token %s is empty", p)
	}
	return tok, nil
}

func (h home) loadAPI() (*apiInfo, error) {
	b, err := os.ReadFile(h.path(apiFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no site is running for %s (no %s): start it with `kqnode run --home %s ...`", h.dir, apiFile, h.dir)
	}
	if err != nil {
		return nil, err
	}
	var a apiInfo
	if err := json.Unmarshal(b, &a); err != nil {
		return nil, fmt.Errorf("%s: %w", h.path(apiFile), err)
	}
	return &a, nil
}

func trimNewline(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// writeFileAtomic writes data to path through a temporary file in the same
// directory, synced before the rename, so readers never see half a file.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
