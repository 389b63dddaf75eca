// Package policy lets every site of a threshold key decide for itself what
// it signs: it turns a signing request's intent into the digests to sign
// and a summary people approve, evaluates the site's own rules over them,
// and verifies the approvals people made with their SSH keys.
//
// Everything here is pure: no file, network or clock access. The site
// supplies its key description, its clock, its velocity record and the
// bytes it received; the package computes.
//
// # Intents
//
// An [Intent] is the whole payload of a request: a PSBT with the outputs its
// inputs spend ([NewPSBTIntent]), an unsigned Ethereum transaction with its
// chain ID ([NewEthereumTxIntent]), EIP-712 typed data ([NewTypedDataIntent]),
// an EIP-191 message ([NewPersonalMessageIntent]) or a raw digest
// ([NewRawDigestIntent]). It has one canonical encoding ([Intent.Bytes],
// read back by [ParseIntent]) and a hash ([Intent.Hash]). Every size is
// bounded before a peer's bytes are parsed.
//
// # Plans
//
// [Derive] computes, with package wallet and the site's own [Key], every
// digest the intent asks the key to sign (one per input of the key for a
// PSBT: one intent, one approval), the wallet.Summary shown to approvers,
// its hash, and the value the intent moves ([Spend]). A site joins a signing
// session only for a digest its own [Plan] covers ([Plan.Covers]). A
// [KeyCache] keeps derived child keys between requests.
//
// # Policies
//
// [Parse] reads a policy file (FORMAT.md): approvers with OpenSSH public keys
// (ssh-ed25519, ecdsa-sha2-nistp256 and the FIDO2 types
// sk-ssh-ed25519@openssh.com and sk-ecdsa-sha2-nistp256@openssh.com),
// approver groups, named lists, and ordered rules whose conditions are CEL
// expressions over the summary, key, path, chain, time, approvals and recent
// spending. [Policy.Evaluate] verifies the approvals and takes the first rule
// that matches: deny, or allow with the approvals the rule names. No match
// refuses, and raw digests are refused unless an allow-raw-digest rule
// matches. [Policy.Authorize] also records the spend in the site's
// [Velocity] in the same step.
//
// # Approvals
//
// An approver approves a [Statement] (intent hash, summary hash, key,
// committee, expiry; [Plan.Statement]) by signing its text with
//
//	ssh-keygen -Y sign -n keyquorum-approval -f ~/.ssh/id_ed25519 statement
//
// or [SignStatement]. An [Approval] is the statement and the signature; a
// list of them travels with a request ([EncodeApprovals], [DecodeApprovals])
// and each site verifies each one against the keys of its own policy.
//
// # Wiring a site
//
// On receiving a proposal with intent bytes and evidence, a site runs:
//
//	in, err := policy.ParseIntent(intentBytes)             // refuse on error
//	plan, err := keyCache.Derive(ctx, in, key)             // key from its own store
//	approvals, err := policy.DecodeApprovals(evidence)
//	d, err := pol.Authorize(ctx, plan, policy.Input{Now: time.Now(), Approvals: approvals, Velocity: vel})
//	// err != nil: refuse, and send err (a *RefusedError naming the rule) to the peer
//	// persist vel.MarshalBinary() sealed, then sign only digests with plan.Covers(digest, path)
package policy
