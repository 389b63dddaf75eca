package hd_test

import (
	"encoding/hex"
	"fmt"

	"github.com/keyquorum/keyquorum/wallet/hd"
)

// ExampleDerive derives the key for receive address 7 of a threshold key.
// The group public key and chain code here are the master key of BIP-32 test
// vector 1, standing in for those agreed at keygen. Every signer adds the
// returned tweak to its share when it signs for m/0/7.
func ExampleDerive() {
	groupKey, _ := hex.DecodeString("0339a36013301597daef41fbe593a02cc513d0b55527ec2df1050e2e8ff49c85c2")
	chainCode, _ := hex.DecodeString("873dff81c02f525623fd1fe5167eac3a55a049de3d314bb42ee227ffed37d508")

	path, err := hd.ParsePath("m/0/7")
	if err != nil {
		fmt.Println(err)
		return
	}
	child, _, tweak, err := hd.DeriveKey(groupKey, chainCode, path)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s child key %x\n", path, child.SerializeCompressed())
	fmt.Printf("tweak %x\n", tweak)

	_, err = hd.ParsePath("m/44'/0")
	fmt.Println(err)
	// Output:
	// m/0/7 child key 0326abaa1f0174d87f16d63879e70b1425fc220f9d57ab4531c2328953c04260e5
	// tweak 800dfca51802d94df3aed5fe8b35a6f213d0e372d253829df5b02f34ec88799e
	// hd: hardened derivation is not possible for a threshold key: path "m/44'/0", level 1 ("44'") is hardened; use only non-hardened indexes such as m/0/7
}
