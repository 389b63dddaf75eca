// Package tss runs threshold ECDSA protocols between the parties of a
// committee: key generation, classic (GG18) signing, GG20 presigning and
// one-round signing, and resharing.
//
// The package talks to other parties only through the Network interface and
// keeps secrets only through the Store interface, so it knows nothing of
// libp2p or PKCS#11. See DESIGN.md for the protocols and the session rules.
package tss
