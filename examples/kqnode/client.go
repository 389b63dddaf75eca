package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"

	"golang.org/x/crypto/ssh"

	"github.com/keyquorum/keyquorum"
)

// errNotRunning means no site answered for --home.
var errNotRunning = errors.New("site not running")

// apiError is a failure the site reported.
type apiError struct {
	status int
	body   errorBody
}

func (e *apiError) Error() string {
	msg := e.body.Error
	if len(e.body.Parties) > 0 && !containsAll(msg, e.body.Parties) {
		msg += " (sites: " + strings.Join(e.body.Parties, ", ") + ")"
	}
	return msg
}

func containsAll(s string, parts []string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

// client talks to the site whose home is dir.
type client struct {
	home     home
	base     string // URL prefix of the API
	endpoint string // the endpoint, for messages
	site     string // the site's peer ID, which every signature names
	signer   ssh.Signer
	http     *http.Client
}

// newClient checks the home and its endpoint file (see trust.go) and
// prepares to talk to the site: over its Unix socket, to a server of the
// client's own uid, or over TLS, to a server holding the key pinned in
// api.json. Nothing is sent before that check. Every request is signed
// with signer, the operator's key.
func newClient(dir string, timeout time.Duration, signer ssh.Signer) (*client, error) {
	h := home{dir: dir}
	if err := h.check(); err != nil {
		return nil, err
	}
	if _, err := h.loadConfig(); err != nil {
		return nil, err
	}
	api, err := h.loadAPI()
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{
		Proxy:               nil, // never through a proxy
		MaxIdleConns:        2,
		IdleConnTimeout:     defaultAPILimits.Idle / 2,
		TLSHandshakeTimeout: defaultAPILimits.ReadHeader,
	}
	c := &client{home: h, endpoint: endpointString(*api), site: api.PeerID, signer: signer, http: &http.Client{Timeout: timeout, Transport: tr}}
	switch api.Network {
	case "unix":
		socket := h.path(apiSocket)
		c.base = "http://kqnode"
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			conn, err := d.DialContext(ctx, "unix", socket)
			if err != nil {
				return nil, err
			}
			if uid, _, err := peerCred(conn); err != nil || uid != os.Geteuid() {
				conn.Close()
				reason := fmt.Sprintf("the socket's server runs as %s, not as %s", userName(uid), userName(os.Geteuid()))
				if err != nil {
					reason = err.Error()
				}
				return nil, &notAuthenticatedError{reason: reason}
			}
			return conn, nil
		}
	case "tcp":
		if err := loopbackAddr(api.Addr); err != nil {
			return nil, fmt.Errorf("%s: %w", h.path(apiFile), err)
		}
		if !strings.HasPrefix(api.TLSPin, "sha256//") {
			return nil, fmt.Errorf("%s: a TCP endpoint without a TLS key pin: restart the site with this version's `kqnode run`", h.path(apiFile))
		}
		c.base = "https://" + api.Addr
		tr.TLSClientConfig = pinnedTLS(api.TLSPin)
	}
	return c, nil
}

// call sends req (nil for GET) to path and decodes the answer into resp.
func (c *client) call(ctx context.Context, path string, req, resp any) error {
	data, err := c.roundTrip(ctx, path, req, maxRequestBody)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, resp); err != nil {
		return fmt.Errorf("control API %s: bad answer: %w", c.endpoint, err)
	}
	return nil
}

// roundTrip sends req (nil for GET) to path and returns the body of a
// successful answer, of at most limit bytes.
func (c *client) roundTrip(ctx context.Context, path string, req any, limit int64) ([]byte, error) {
	method, body := http.MethodGet, []byte(nil)
	if req != nil {
		b, err := json.Marshal(req)
		if err != nil {
			return nil, err
		}
		method, body = http.MethodPost, b
	}
	hr, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	nonce, err := newNonce()
	if err != nil {
		return nil, err
	}
	now := time.Now().Unix()
	auth, err := signAPIRequest(c.signer, signedText(c.site, method, hr.URL.RequestURI(), body, now, nonce))
	if err != nil {
		return nil, err
	}
	hr.Header.Set("Authorization", auth)
	hr.Header.Set(headerTime, strconv.FormatInt(now, 10))
	hr.Header.Set(headerNonce, nonce)
	hr.Header.Set("Content-Type", "application/json")
	r, err := c.http.Do(hr)
	if err != nil {
		var na *notAuthenticatedError
		switch {
		case errors.As(err, &na):
			return nil, fmt.Errorf("%w: what answers at %s (from %s) did not prove it is the site of %s (%s), so the client sent it nothing: "+
				"the site is not running (a crash left %s behind) and another program took its address; start the site again with `kqnode run --home %s ...`",
				errServerNotAuthenticated, c.endpoint, c.home.path(apiFile), c.home.dir, na.reason, apiFile, c.home.dir)
		case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ENOENT):
			return nil, fmt.Errorf("%w: nothing listens at %s (from %s): start the site with `kqnode run --home %s ...`",
				errNotRunning, c.endpoint, c.home.path(apiFile), c.home.dir)
		}
		if c.timedOut(err) {
			return nil, c.timeoutError(path, err)
		}
		return nil, fmt.Errorf("control API %s: %w", c.endpoint, err)
	}
	defer r.Body.Close()
	data, err := io.ReadAll(io.LimitReader(r.Body, limit))
	if err != nil {
		if c.timedOut(err) {
			return nil, c.timeoutError(path, err)
		}
		return nil, fmt.Errorf("control API %s: %w", c.endpoint, err)
	}
	if r.StatusCode != http.StatusOK {
		var eb errorBody
		if json.Unmarshal(data, &eb) != nil || eb.Code == "" {
			eb = errorBody{Code: codeInternal, Error: fmt.Sprintf("control API answered %s", r.Status)}
		}
		return nil, &apiError{status: r.StatusCode, body: eb}
	}
	return data, nil
}

// timedOut reports an error of the client's own --timeout (the HTTP
// client's deadline), not one the site reported.
func (c *client) timedOut(err error) bool {
	var ne net.Error
	return c.http.Timeout > 0 && (errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()))
}

// timeoutError says that the client stopped waiting, and what may still be
// going on at the site.
func (c *client) timeoutError(path string, err error) error {
	return fmt.Errorf("%w: the site (%s) did not answer %s within --timeout %s; an operation may still be running there "+
		"(see `kqnode status --home %s`); give a longer --timeout to wait for it: %w",
		errClientTimeout, c.endpoint, path, c.http.Timeout, c.home.dir, err)
}

// clientFlags are the flags every client command takes.
type clientFlags struct {
	*flagSet
	home        *string
	json        *bool
	timeout     *time.Duration
	operatorKey *string
}

func newClientFlags(name, synopsis string) *clientFlags {
	fs := newFlagSet(name, synopsis)
	return &clientFlags{
		flagSet:     fs,
		home:        fs.String("home", "", "site home directory (required)"),
		json:        fs.Bool("json", false, "print exactly one JSON object on stdout (also on failure)"),
		timeout:     fs.Duration("timeout", 30*time.Minute, "give up waiting for the site after this long"),
		operatorKey: fs.String("operator-key", "", "the operator's SSH key that signs every request: a private key file, or KEY.pub with the key in ssh-agent (default $"+envOperatorKey+")"),
	}
}

func (f *clientFlags) parse(e *env, args []string) (*client, error) {
	// Known before parsing, so that a flag error is reported as JSON too.
	e.json = wantsJSON(args)
	if err := f.flagSet.parse(args, e.stdout); err != nil {
		return nil, err
	}
	e.json = *f.json
	if *f.home == "" {
		return nil, usageErrorf("%s: --home is required\nusage: %s", f.Name(), f.synopsis)
	}
	signer, err := loadOperatorKey(*f.operatorKey)
	if err != nil {
		return nil, err
	}
	c, err := newClient(*f.home, *f.timeout, signer)
	if err != nil {
		return nil, err
	}
	e.closers = append(e.closers, c.http.CloseIdleConnections)
	return c, nil
}

// wantsJSON reports whether args ask for --json, so that a usage error
// found before the flags are parsed is reported as JSON too.
func wantsJSON(args []string) bool {
	return slices.ContainsFunc(args, func(a string) bool {
		return a == "--json" || a == "-json" || a == "--json=true" || a == "-json=true"
	})
}

// output prints a result as JSON or as "name: value" lines (zero
// omitempty fields left out), followed by the summary of what was signed
// when the result carries one (see printSummary).
func output(e *env, v any) error {
	if e.json {
		return printJSON(e.stdout, v)
	}
	rv := reflect.Indirect(reflect.ValueOf(v))
	rt := rv.Type()
	var summary json.RawMessage
	for i := range rt.NumField() {
		name, opts, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
		if name == "" || name == "-" || (opts == "omitempty" && rv.Field(i).IsZero()) {
			continue
		}
		val := rv.Field(i).Interface()
		if raw, ok := val.(json.RawMessage); ok && name == "summary" {
			summary = raw
			continue
		}
		if s, ok := val.([]string); ok {
			val = strings.Join(s, ",")
		}
		fmt.Fprintf(e.stdout, "%-13s %v\n", name+":", val)
	}
	if len(summary) > 0 {
		return printSummary(e.stdout, summary)
	}
	return nil
}

// withProgress runs f; when stderr is a terminal it shows, every two
// seconds, how long the operation has run and what the site reports.
func withProgress(ctx context.Context, e *env, c *client, what string, f func() error) error {
	fi, ok := e.stderr.(*os.File)
	if !ok {
		return f()
	}
	if st, err := fi.Stat(); err != nil || st.Mode()&os.ModeCharDevice == 0 {
		return f()
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		start := time.Now()
		tick := time.NewTicker(2 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				fmt.Fprint(fi, "\r\033[K")
				return
			case <-tick.C:
			}
			line := fmt.Sprintf("%s: %s elapsed", what, time.Since(start).Round(time.Second))
			var st statusResult
			if err := c.call(ctx, pathStatus, nil, &st); err == nil && st.Status != nil {
				pp := st.PreParams
				line += fmt.Sprintf("; operations running: %d; pre-parameters ready %d/%d, generating %d",
					len(st.Operations), pp.Ready, pp.Target, pp.Generating)
			}
			fmt.Fprint(fi, "\r\033[K"+line)
		}
	}()
	err := f()
	cancel()
	<-done
	return err
}

// signFlags adds the flags every signing command shares.
func (f *clientFlags) signFlags() (signers, protocol *string) {
	signers = f.String("signers", "", "signer set, comma-separated (default: this site and the first M-1 others)")
	protocol = f.String("protocol", "auto", "gg20 (needs a presignature), gg18, or auto (gg20 when a presignature is ready)")
	return signers, protocol
}

// request sends req to path, showing progress on a terminal, and prints
// the result into res.
func (c *client) request(ctx context.Context, e *env, what, path string, req, res any) error {
	if err := withProgress(ctx, e, c, what, func() error { return c.call(ctx, path, req, res) }); err != nil {
		return err
	}
	return output(e, res)
}

func cmdKeygen(ctx context.Context, e *env, args []string) error {
	f := newClientFlags("keygen", "kqnode keygen --home DIR --threshold M --parties ID,ID,ID [--label NAME] [--network regtest] [--wait] [--json]")
	threshold := f.Int("threshold", 0, "M: how many sites must sign (\"2-of-3\" is --threshold 2) (required)")
	parties := f.String("parties", "", "the committee's peer IDs, comma-separated, this site included (required)")
	network := f.String("network", "regtest", "Bitcoin network of btc_address: mainnet, testnet, regtest or signet")
	label := f.String("label", "", "this site's name for the new key (up to 64 bytes; the other sites label it themselves with keys label)")
	wait := f.Bool("wait", false, "wait (up to --timeout) until this site and every other party has a pre-parameter set, showing progress, then make the key")
	c, err := f.parse(e, args)
	if err != nil {
		return err
	}
	if *threshold <= 0 || *parties == "" {
		return usageErrorf("keygen: --threshold and --parties are required\nusage: %s", f.synopsis)
	}
	ids, err := peerList("keygen", "parties", *parties)
	if err != nil {
		return err
	}
	if *label != "" {
		if err := keyquorum.ValidKeyLabel(*label); err != nil {
			return usageErrorf("keygen: --label: %v\nusage: %s", err, f.synopsis)
		}
	}
	req := keygenRequest{Parties: ids, Threshold: *threshold, Network: *network, Label: *label}
	if *wait {
		return keygenWhenReady(ctx, e, c, req)
	}
	return c.request(ctx, e, "keygen", pathKeygen, req, &keygenResult{})
}

func cmdPresign(ctx context.Context, e *env, args []string) error {
	f := newClientFlags("presign", "kqnode presign --home DIR --key ID --count N [--signers ID,ID] [--path m/0/1] [--json]")
	key := f.String("key", "", "key ID (required)")
	count := f.Int("count", 0, "how many presignatures to make (required)")
	signers := f.String("signers", "", "signer set, comma-separated (default: this site and the first M-1 others)")
	path := f.String("path", "", "BIP-32 derivation path the presignatures are for (default m)")
	c, err := f.parse(e, args)
	if err != nil {
		return err
	}
	if *key == "" || *count <= 0 {
		return usageErrorf("presign: --key and a positive --count are required\nusage: %s", f.synopsis)
	}
	ids, err := peerList("presign", "signers", *signers)
	if err != nil {
		return err
	}
	return c.request(ctx, e, "presign", pathPresign, presignRequest{KeyID: *key, Signers: ids, Path: *path, Count: *count}, &presignResult{})
}

func cmdSign(ctx context.Context, e *env, args []string) error {
	f := newClientFlags("sign", "kqnode sign --home DIR --key ID (--digest HEX | --digests FILE|-) [--signers ID,ID] [--path m/0/1] [--protocol gg20|gg18|auto] [--json]")
	key := f.String("key", "", "key ID (required)")
	digest := f.String("digest", "", "32-byte digest to sign, 64 hex digits (this or --digests is required)")
	digests := f.String("digests", "", "sign every digest read from FILE (- for standard input), one per line as \"HEX [PATH]\", in order, and print one result per line")
	path := f.String("path", "", "BIP-32 derivation path (default m)")
	signers, protocol := f.signFlags()
	c, err := f.parse(e, args)
	if err != nil {
		return err
	}
	if *key == "" || (*digest == "") == (*digests == "") {
		return usageErrorf("sign: --key and one of --digest and --digests are required\nusage: %s", f.synopsis)
	}
	ids, err := peerList("sign", "signers", *signers)
	if err != nil {
		return err
	}
	req := signRequest{KeyID: *key, Digest: *digest, Path: *path, signOptions: signOptions{Signers: ids, Protocol: *protocol}}
	if *digests != "" {
		return signLines(ctx, e, c, *digests, req)
	}
	return c.request(ctx, e, "sign", pathSign, req, &signResult{})
}

// maxDigestLine bounds one line of sign --digests: a digest, a space and
// a path.
const maxDigestLine = 4096

// signLines signs each digest of the file named (- is standard input),
// one line "HEX", or "HEX PATH" to override the path, each, over the one client connection, in order,
// and prints each result as it comes: a JSON line with --json (a failed
// line is an error object with its line number), else "DIGEST PROTOCOL
// DER". A process start costs far more than a signature's round trip
// through the API (see the README's "Latency of a signature from the
// CLI"), so a script that signs many digests keeps one process for them.
// A failed line does not stop the others; the command then fails,
// naming how many failed.
func signLines(ctx context.Context, e *env, c *client, name string, base signRequest) error {
	var in io.Reader = os.Stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return usageErrorf("sign: --digests %s: %v", name, err)
		}
		defer f.Close()
		in = f
	}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 0, 256), maxDigestLine)
	enc := json.NewEncoder(e.stdout)
	line, failed, signed := 0, 0, 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		req := base
		fields := strings.Fields(text)
		req.Digest = fields[0]
		var err error
		switch {
		case len(fields) > 2:
			err = fmt.Errorf("%w: line %d: want \"DIGEST [PATH]\", got %d fields", errBadRequest, line, len(fields))
		case len(fields) == 2:
			req.Path = fields[1]
		}
		var res signResult
		if err == nil {
			err = c.call(ctx, pathSign, req, &res)
		}
		if err != nil {
			failed++
			if ctx.Err() != nil {
				return err
			}
			fmt.Fprintf(e.stderr, "kqnode sign: line %d: %v\n", line, err)
			if e.json {
				eb := errorJSON(err)
				if encErr := enc.Encode(struct {
					Line int `json:"line"`
					errorBody
				}{line, eb}); encErr != nil {
					return encErr
				}
			}
			continue
		}
		signed++
		if e.json {
			err = enc.Encode(res)
		} else {
			_, err = fmt.Fprintf(e.stdout, "%s %s %s\n", res.Digest, res.Protocol, res.DER)
		}
		if err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%w: --digests %s: line %d: %w", errBadRequest, name, line+1, err)
	}
	if failed > 0 {
		// The failures are printed already; this is the exit status.
		e.json = false
		return fmt.Errorf("%d of %d digests not signed (each failure is printed above with its line)", failed, failed+signed)
	}
	return nil
}

// peerList splits a comma-separated list of peer IDs. Peer IDs never hold
// spaces, so a list separated by spaces is a usage error that says how to
// write it (the site would only see one long, invalid ID).
func peerList(cmd, flag, s string) ([]string, error) {
	ids := splitList(s)
	for _, id := range ids {
		if strings.ContainsFunc(id, unicode.IsSpace) {
			return nil, usageErrorf("%s: --%s %q: separate peer IDs with commas, not spaces (--%s ID,ID)", cmd, flag, s, flag)
		}
	}
	return ids, nil
}

// readArg returns s, or the contents of FILE for "@FILE": text is
// trimmed, a binary PSBT is passed on as hex.
func readArg(cmd, name, s string) (string, error) {
	file, ok := strings.CutPrefix(s, "@")
	if !ok {
		return s, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", usageErrorf("%s: --%s %s: %v", cmd, name, s, err)
	}
	if bytes.HasPrefix(b, []byte("psbt\xff")) {
		return hex.EncodeToString(b), nil
	}
	return strings.TrimSpace(string(b)), nil
}

func cmdSignPSBT(ctx context.Context, e *env, args []string) error {
	f := newClientFlags("sign-psbt", "kqnode sign-psbt --home DIR --key ID --psbt BASE64|@FILE [--network regtest] [--paths m/0/0,...] [--signers ID,ID] [--protocol gg20|gg18|auto] [--json]")
	key := f.String("key", "", "key ID (required)")
	psbtArg := f.String("psbt", "", "the PSBT in base64, or @FILE holding base64 or binary (required)")
	network := f.String("network", "regtest", "Bitcoin network: mainnet, testnet, regtest or signet")
	paths := f.String("paths", "", "derivation paths whose scripts mark this key's inputs when the PSBT has no BIP-32 fields (m is always tried)")
	signers, protocol := f.signFlags()
	c, err := f.parse(e, args)
	if err != nil {
		return err
	}
	if *key == "" || *psbtArg == "" {
		return usageErrorf("sign-psbt: --key and --psbt are required\nusage: %s", f.synopsis)
	}
	p, err := readArg("sign-psbt", "psbt", *psbtArg)
	if err != nil {
		return err
	}
	ids, err := peerList("sign-psbt", "signers", *signers)
	if err != nil {
		return err
	}
	return c.request(ctx, e, "sign-psbt", pathSignPSBT, signPSBTRequest{KeyID: *key, PSBT: p, Network: *network, Paths: splitList(*paths),
		signOptions: signOptions{Signers: ids, Protocol: *protocol}}, &signPSBTResult{})
}

func cmdSignEth(ctx context.Context, e *env, args []string) error {
	f := newClientFlags("sign-eth", "kqnode sign-eth --home DIR --key ID --tx HEX|@FILE --chain-id N [--path m/0/1] [--signers ID,ID] [--protocol gg20|gg18|auto] [--json]")
	key := f.String("key", "", "key ID (required)")
	txArg := f.String("tx", "", "unsigned transaction: hex of the typed envelope or legacy RLP, or @FILE (required)")
	chainID := f.String("chain-id", "", "chain ID, decimal (required)")
	path := f.String("path", "", "BIP-32 derivation path of the sender (default m)")
	signers, protocol := f.signFlags()
	c, err := f.parse(e, args)
	if err != nil {
		return err
	}
	if *key == "" || *txArg == "" || *chainID == "" {
		return usageErrorf("sign-eth: --key, --tx and --chain-id are required\nusage: %s", f.synopsis)
	}
	tx, err := readArg("sign-eth", "tx", *txArg)
	if err != nil {
		return err
	}
	ids, err := peerList("sign-eth", "signers", *signers)
	if err != nil {
		return err
	}
	return c.request(ctx, e, "sign-eth", pathSignEth, signEthRequest{KeyID: *key, Tx: tx, ChainID: *chainID, Path: *path,
		signOptions: signOptions{Signers: ids, Protocol: *protocol}}, &signEthResult{})
}

func cmdStatus(ctx context.Context, e *env, args []string) error {
	f := newClientFlags("status", "kqnode status --home DIR [--json]")
	c, err := f.parse(e, args)
	if err != nil {
		return err
	}
	var st statusResult
	if err := c.call(ctx, pathStatus, nil, &st); err != nil {
		return err
	}
	if e.json {
		return printJSON(e.stdout, st)
	}
	printStatus(e.stdout, &st)
	return nil
}
