package main

import (
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
//	  api.sock       the control API's Unix socket (run, unless --api
//	                 asks for TCP), mode 0600
//	  api.json       the API endpoint file: where the running site's API
//	                 listens, mode 0600; written by run once it listens,
//	                 removed when it stops
//	  operators.json the operators who may use the API: names, roles and
//	                 SSH public keys (operators.go), mode 0600; written by
//	                 init --admin-key and kqnode operators add|remove
//	  requests/      requests waiting for approvals (request.go)
//
// Every one of them must be the user's own and closed to others (see
// trust.go); kqnode refuses to start, or a client to connect, otherwise.
const (
	configFile   = "config.json"
	storeDirName = "store"
	apiSocket    = "api.sock"
	apiFile      = "api.json"
	// legacyTokenFile held the API token of earlier versions, which kept
	// one token for every run; run removes it.
	legacyTokenFile = "api-token"
	// maxAPIFileSize bounds api.json.
	maxAPIFileSize = 64 << 10
)

// siteConfig is DIR/config.json.
type siteConfig struct {
	Version int    `json:"version"`
	Module  string `json:"module"`
	// ModuleInitArgs are the module's initialization arguments
	// (hsmshare.Config.ModuleInitArgs), for modules that need them such as
	// NSS softoken; empty for most.
	ModuleInitArgs string `json:"module_init_args,omitempty"`
	Token          string `json:"token"`
	TokenSerial    string `json:"token_serial,omitempty"`
	// AllowNoTokenRNG is init's --allow-no-token-rng: the site may run
	// with the operating system's generator alone when its token has none
	// (keyquorum.Config.AllowNoTokenRNG).
	AllowNoTokenRNG   bool   `json:"allow_no_token_rng,omitempty"`
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

// apiInfo is DIR/api.json, the API endpoint file.
type apiInfo struct {
	// Network is "unix" (Addr is the path of DIR/api.sock) or "tcp" (Addr
	// is a loopback host:port served over TLS).
	Network string `json:"network"`
	Addr    string `json:"addr"`
	// TLSPin, for "tcp", is the server's public key: "sha256//" and the
	// base64 SHA-256 of its certificate's SubjectPublicKeyInfo (curl's
	// --pinnedpubkey form). A client sends nothing before the server
	// proved it holds that key.
	TLSPin string `json:"tls_pin,omitempty"`
	PID    int    `json:"pid"`
	PeerID string `json:"peer_id"`
}

// String describes the endpoint.
func (a apiInfo) String() string {
	return fmt.Sprintf("API %s %s (pid %d, peer %s)", a.Network, a.Addr, a.PID, a.PeerID)
}

type home struct{ dir string }

func (h home) path(name string) string { return filepath.Join(h.dir, name) }

func (h home) storeDir() string { return h.path(storeDirName) }

// check checks the home directory, the directories on the way to it and
// store/ (see trust.go).
func (h home) check() error {
	if err := checkTrusted(h.dir, homePolicy); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%w: %s does not exist: run `kqnode init --home %s ...` first", errNotInitialized, h.dir, h.dir)
		}
		return err
	}
	if err := checkTrusted(h.storeDir(), storePolicy); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// loadConfig reads DIR/config.json; a missing file means init has not run.
// The caller checks the home first.
func (h home) loadConfig() (*siteConfig, error) {
	b, err := readTrusted(h.path(configFile), configPolicy, maxConfigSize)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s has no %s: run `kqnode init --home %s ...` first", errNotInitialized, h.dir, configFile, h.dir)
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

// loadAPI reads DIR/api.json. The caller checks the home first.
func (h home) loadAPI() (*apiInfo, error) {
	p := h.path(apiFile)
	b, err := readTrusted(p, apiPolicy, maxAPIFileSize)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: no site is running for %s (no %s): start it with `kqnode run --home %s ...`", errNotRunning, h.dir, apiFile, h.dir)
	}
	if err != nil {
		return nil, err
	}
	var a apiInfo
	if err := json.Unmarshal(b, &a); err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	if a.PeerID == "" || (a.Network != "unix" && a.Network != "tcp") {
		return nil, fmt.Errorf("%s was written by an older kqnode (no network or peer ID): restart the site with this version's `kqnode run --home %s ...`", p, h.dir)
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
