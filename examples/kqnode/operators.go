package main

// Operators: the people who may use a site's control API, each with an SSH
// public key and roles, kept in DIR/operators.json:
//
//	{"version": 1, "operators": [
//	  {"name": "alice", "roles": ["admin"], "key": "ssh-ed25519 AAAA… alice@laptop",
//	   "added": "2026-12-05T17:00:00Z", "added_by": "init"}]}
//
// Every API request is signed with the operator's SSH key (see
// requestauth.go); the site finds the operator by the exact public key,
// and lets the request through only if one of the operator's roles may
// use the route (routeRoles; a route not listed there is admin only).

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// Roles of the control API.
const (
	roleRequester = "requester" // creates signing requests and signs them
	roleApprover  = "approver"  // adds approvals to requests
	roleAdmin     = "admin"     // keygen, presignatures, operators, and every route not listed in routeRoles
	roleAuditor   = "auditor"   // reads status, the operator list and audit entries with their sealed details
)

// allRoles are the roles in the order messages list them.
var allRoles = []string{roleRequester, roleApprover, roleAdmin, roleAuditor}

// routeRoles says which roles may use each route ("METHOD /path"). A
// route that is not listed is admin only: a new route is closed until it
// is classified here.
var routeRoles = map[string][]string{
	"GET " + pathStatus:           {roleRequester, roleApprover, roleAdmin, roleAuditor},
	"POST " + pathPlan:            {roleRequester, roleApprover, roleAuditor},
	"POST " + pathSign:            {roleRequester},
	"POST " + pathSignPSBT:        {roleRequester},
	"POST " + pathSignEth:         {roleRequester},
	"POST " + pathRequests:        {roleRequester},
	"POST " + pathRequestsApprove: {roleApprover},
	"GET " + pathOperators:        {roleAdmin, roleAuditor},
	// An entry's sealed detail holds whole intents: auditors and admins.
	"GET " + pathAuditEntry: {roleAdmin, roleAuditor},
	// Administration changes keys or stored state: admin only, listed so
	// that the table is the whole answer.
	"POST " + pathKeyLabel:      {roleAdmin},
	"POST " + pathReshare:       {roleAdmin},
	"POST " + pathReshareAccept: {roleAdmin},
	"POST " + pathRotateSealKey: {roleAdmin},
	"POST " + pathPreParamsGen:  {roleAdmin},
	"POST " + pathPoolTarget:    {roleAdmin},
	"POST " + pathPoolDrain:     {roleAdmin},
	// A backup holds every sealed share and the site's configuration.
	"POST " + pathBackup: {roleAdmin},
	// Carrying bundles moves messages; every proposal in them is checked
	// by the engine and the signing policy as if it came over libp2p.
	// Inspecting shows what a bundle asks, as a plan shows a request.
	"POST " + pathOfflineExport:  {roleAdmin, roleRequester},
	"POST " + pathOfflineImport:  {roleAdmin, roleRequester},
	"POST " + pathOfflineInspect: {roleAdmin, roleRequester, roleApprover, roleAuditor},
	// Declaring bundles lost fails their sessions.
	"POST " + pathOfflineSkip: {roleAdmin},
}

// rolesFor returns the roles that may use method and path.
func rolesFor(method, path string) []string {
	if r, ok := routeRoles[method+" "+path]; ok {
		return r
	}
	return []string{roleAdmin}
}

const (
	operatorsFile = "operators.json"
	// maxOperatorsFileSize bounds operators.json.
	maxOperatorsFileSize = 1 << 20
	// maxOperatorName bounds an operator's name.
	maxOperatorName = 64
)

var operatorsPolicy = trustPolicy{what: "operators file"}

// errNoOperators means the home has no operators file.
var errNoOperators = errors.New("no operators")

// operator is one entry of operators.json.
type operator struct {
	Name  string   `json:"name"`
	Roles []string `json:"roles"`
	// Key is the operator's SSH public key in authorized_keys form.
	Key     string    `json:"key"`
	Added   time.Time `json:"added"`
	AddedBy string    `json:"added_by"`
	// Fingerprint is the key's SHA256 fingerprint (in answers only).
	Fingerprint string `json:"fingerprint,omitempty"`

	pub ssh.PublicKey
}

func (o *operator) has(roles []string) bool {
	for _, r := range roles {
		if slices.Contains(o.Roles, r) {
			return true
		}
	}
	return false
}

type operatorsDoc struct {
	Version   int         `json:"version"`
	Operators []*operator `json:"operators"`
}

// operatorSet is the site's operators, kept in memory by the running site
// and written back on every change.
type operatorSet struct {
	path  string
	mu    sync.Mutex
	byKey map[string]*operator // by the public key's wire form
	list  []*operator
}

// loadOperators reads the home's operators file.
func loadOperators(h home) (*operatorSet, error) {
	p := h.path(operatorsFile)
	b, err := readTrusted(p, operatorsPolicy, maxOperatorsFileSize)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s has no %s, so nobody could use its control API: stop the site and register the first admin with `kqnode init --home %s ... --admin-key KEY.pub` (the same flags as at setup)",
			errNoOperators, h.dir, operatorsFile, h.dir)
	}
	if err != nil {
		return nil, err
	}
	var doc operatorsDoc
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	if doc.Version != 1 {
		return nil, fmt.Errorf("%s: unsupported version %d", p, doc.Version)
	}
	s := &operatorSet{path: p, byKey: map[string]*operator{}}
	for _, o := range doc.Operators {
		if err := s.insert(o); err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
	}
	return s, nil
}

// newOperatorSet is an empty set kept in the home's operators file.
func newOperatorSet(h home) *operatorSet {
	return &operatorSet{path: h.path(operatorsFile), byKey: map[string]*operator{}}
}

// parseOperatorKey reads an SSH public key in authorized_keys form and
// refuses the key types operators may not use.
func parseOperatorKey(text string) (ssh.PublicKey, string, error) {
	pub, comment, _, _, err := ssh.ParseAuthorizedKey([]byte(text))
	if err != nil {
		return nil, "", fmt.Errorf("%w: not an SSH public key (the one line of a .pub file): %v", errBadRequest, err)
	}
	switch pub.Type() {
	case ssh.KeyAlgoED25519, ssh.KeyAlgoECDSA256, ssh.KeyAlgoSKED25519, ssh.KeyAlgoSKECDSA256:
	default:
		return nil, "", fmt.Errorf("%w: key type %s: an operator key is ssh-ed25519, ecdsa-sha2-nistp256 or a FIDO2 security key (sk-ssh-ed25519@openssh.com, sk-ecdsa-sha2-nistp256@openssh.com)", errBadRequest, pub.Type())
	}
	return pub, comment, nil
}

// checkOperator validates an entry and fills its parsed key.
func checkOperator(o *operator) error {
	if o.Name == "" || len(o.Name) > maxOperatorName || strings.ContainsFunc(o.Name, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._@-", r))
	}) {
		return fmt.Errorf("%w: operator name %q: 1 to %d letters, digits and . _ @ -", errBadRequest, truncate(o.Name, 80), maxOperatorName)
	}
	if len(o.Roles) == 0 {
		return fmt.Errorf("%w: operator %s has no role: give one or more of %s", errBadRequest, o.Name, strings.Join(allRoles, ", "))
	}
	for _, r := range o.Roles {
		if !slices.Contains(allRoles, r) {
			return fmt.Errorf("%w: operator %s: unknown role %q (roles: %s)", errBadRequest, o.Name, truncate(r, 40), strings.Join(allRoles, ", "))
		}
	}
	pub, _, err := parseOperatorKey(o.Key)
	if err != nil {
		return fmt.Errorf("operator %s: %w", o.Name, err)
	}
	o.pub = pub
	o.Fingerprint = ssh.FingerprintSHA256(pub)
	return nil
}

// insert adds o; the caller holds mu or owns the set.
func (s *operatorSet) insert(o *operator) error {
	if err := checkOperator(o); err != nil {
		return err
	}
	if prev, ok := s.byKey[string(o.pub.Marshal())]; ok {
		return fmt.Errorf("%w: key %s is already operator %s's", errBadRequest, o.Fingerprint, prev.Name)
	}
	if slices.ContainsFunc(s.list, func(p *operator) bool { return p.Name == o.Name }) {
		return fmt.Errorf("%w: there is already an operator %s", errBadRequest, o.Name)
	}
	s.byKey[string(o.pub.Marshal())] = o
	s.list = append(s.list, o)
	return nil
}

// lookup returns the operator whose public key has the wire form key.
func (s *operatorSet) lookup(key []byte) (*operator, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.byKey[string(key)]
	if !ok {
		return nil, false
	}
	c := *o
	c.Roles = slices.Clone(o.Roles)
	return &c, true
}

// add registers o, or gives an operator of the same name and key the
// roles of o; by names the admin who asked.
func (s *operatorSet) add(o *operator, by string) (*operator, error) {
	if err := checkOperator(o); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	next := s.clone()
	o.Added, o.AddedBy = time.Now().UTC().Truncate(time.Second), by
	if i := slices.IndexFunc(next.list, func(p *operator) bool { return p.Name == o.Name }); i >= 0 {
		prev := next.list[i]
		if !slices.Equal(prev.pub.Marshal(), o.pub.Marshal()) {
			return nil, fmt.Errorf("%w: operator %s has another key (%s): remove it first (`kqnode operators remove --name %s`) to give the name a new key",
				errBadRequest, o.Name, prev.Fingerprint, o.Name)
		}
		if slices.Equal(prev.Roles, o.Roles) {
			return prev, nil // nothing changes
		}
		next.list = slices.Delete(next.list, i, i+1)
		delete(next.byKey, string(prev.pub.Marshal()))
	}
	if err := next.insert(o); err != nil {
		return nil, err
	}
	if err := next.checkAdmin(); err != nil {
		return nil, err
	}
	if err := next.save(); err != nil {
		return nil, err
	}
	s.byKey, s.list = next.byKey, next.list
	return o, nil
}

// remove takes operator name off the site.
func (s *operatorSet) remove(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := s.clone()
	i := slices.IndexFunc(next.list, func(p *operator) bool { return p.Name == name })
	if i < 0 {
		return fmt.Errorf("%w: no operator %q (kqnode operators list shows them)", errBadRequest, truncate(name, 80))
	}
	delete(next.byKey, string(next.list[i].pub.Marshal()))
	next.list = slices.Delete(next.list, i, i+1)
	if err := next.checkAdmin(); err != nil {
		return err
	}
	if err := next.save(); err != nil {
		return err
	}
	s.byKey, s.list = next.byKey, next.list
	return nil
}

// errLastAdmin refuses a change that would leave the site without admin.
var errLastAdmin = errors.New("last admin")

func (s *operatorSet) checkAdmin() error {
	if !slices.ContainsFunc(s.list, func(o *operator) bool { return slices.Contains(o.Roles, roleAdmin) }) {
		return fmt.Errorf("%w: %w: the change would leave the site without an operator with role admin; add another admin first", errBadRequest, errLastAdmin)
	}
	return nil
}

// operators returns a copy of the list, in the order they were added.
func (s *operatorSet) operators() []operator {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]operator, 0, len(s.list))
	for _, o := range s.list {
		c := *o
		c.Roles = slices.Clone(o.Roles)
		out = append(out, c)
	}
	return out
}

func (s *operatorSet) clone() *operatorSet {
	c := &operatorSet{path: s.path, byKey: make(map[string]*operator, len(s.byKey)), list: slices.Clone(s.list)}
	for k, v := range s.byKey {
		c.byKey[k] = v
	}
	return c
}

// save writes the set to its file.
func (s *operatorSet) save() error {
	doc := operatorsDoc{Version: 1, Operators: make([]*operator, 0, len(s.list))}
	for _, o := range s.list {
		c := *o
		c.Fingerprint = ""
		doc.Operators = append(doc.Operators, &c)
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileAtomic(s.path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", s.path, err)
	}
	return nil
}
