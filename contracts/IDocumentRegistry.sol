// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/**
 * @title IDocumentRegistry
 * @notice Public surface of docchain's registry: who signed which document (by SHA-256) and when.
 *
 * A registration is an EIP-712 message signed off chain by the signer and relayed by anyone, so signing
 * costs the signer no gas. The domain binds name, version, chain id and contract address: a signature
 * cannot be replayed on another chain or registry, and a registration signature is never a valid
 * revocation (distinct type). Only what the chain must answer by itself is stored (one slot per record);
 * the metadata hash and the superseded document travel in the signed message and the event.
 *
 * For large volumes a relayer anchors instead the Merkle root of many signed registrations in one
 * transaction (one slot per root, not per document). The leaf is the signed registration, so the chain still
 * checks the signer's signature: {verifyMerkleRegistration} proves inclusion and signature in one `eth_call`.
 */
interface IDocumentRegistry {
    // ------------------------------------------------------------------ errors

    /// @notice `signature` is not a valid signature by `signer` over the typed message for `docHash`.
    error InvalidSignature(bytes32 docHash, address signer);

    /// @notice The signed message's `deadline` has passed; a relayer can no longer submit it.
    error ExpiredSignature(uint256 deadline);

    /// @notice No record exists for (`docHash`, `signer`).
    error NotRegistered(bytes32 docHash, address signer);

    /// @notice The record for (`docHash`, `signer`) was already revoked.
    error AlreadyRevoked(bytes32 docHash, address signer);

    /// @notice `root` was already anchored; anchoring it again would move its time.
    error RootAlreadyAnchored(bytes32 root);

    /// @notice A tree needs at least one leaf.
    error EmptyTree(bytes32 root);

    /// @notice `root` was never anchored in this registry.
    error RootNotAnchored(bytes32 root);

    /// @notice `proof` does not prove `leaf` to be in the tree of `root`.
    error NotInTree(bytes32 leaf, bytes32 root);

    // ------------------------------------------------------------------ structs

    /// @notice The EIP-712 `Registration` message a signer signs.
    /// @param docHash SHA-256 of the document's bytes.
    /// @param signer The account that signs (an EOA or an ERC-1271 contract wallet).
    /// @param metadataHash Hash of off-chain metadata (file name, note...); zero when there is none.
    /// @param supersedes docHash of the document this one replaces; zero when none.
    /// @param deadline Unix time after which the signature can no longer be submitted.
    struct Registration {
        bytes32 docHash;
        address signer;
        bytes32 metadataHash;
        bytes32 supersedes;
        uint256 deadline;
    }

    /// @notice A registration and its ECDSA signature in EIP-2098 compact form, the element of a batch.
    /// @dev Fixed-size elements keep a batch's calldata and decoding cheap (~570 gas per entry less than
    /// `bytes`). Contract wallets (ERC-1271), whose signatures are arbitrary bytes, use {register}.
    /// @param r The signature's r.
    /// @param vs The signature's s with the parity of v in the top bit.
    struct CompactSignedRegistration {
        Registration registration;
        bytes32 r;
        bytes32 vs;
    }

    /// @notice What the chain keeps per (docHash, signer): one storage slot.
    /// @param registeredAt Block timestamp of the registration; zero means "no record".
    /// @param blockNumber Block in which it was recorded.
    /// @param revokedAt Block timestamp of the revocation; zero while valid.
    struct Record {
        uint48 registeredAt;
        uint48 blockNumber;
        uint48 revokedAt;
    }

    /// @notice When a Merkle root was anchored: one storage slot per root.
    /// @param anchoredAt Block timestamp of the anchoring; zero means "not anchored".
    /// @param blockNumber Block in which it was anchored.
    struct Anchor {
        uint48 anchoredAt;
        uint48 blockNumber;
    }

    /// @notice The values a Merkle leaf commits to: a signed registration, the signature by its hash.
    /// @dev The leaf is OpenZeppelin's `StandardMerkleTree` leaf of `["bytes32","address","bytes32","bytes32"]`:
    /// `keccak256(bytes.concat(keccak256(abi.encode(docHash, signer, metadataHash, signatureHash))))`. Hashing
    /// twice makes a leaf (64-byte preimage, then 32) impossible to take for an inner node (64 bytes).
    /// `supersedes` and `deadline` are not in the leaf: the signature covers them, so the leaf fixes them too.
    /// @param docHash SHA-256 of the document's bytes.
    /// @param signer The account that signed.
    /// @param metadataHash The registration's metadata hash.
    /// @param signatureHash keccak256 of the signature bytes as given to {verifyMerkleRegistration}.
    struct MerkleLeaf {
        bytes32 docHash;
        address signer;
        bytes32 metadataHash;
        bytes32 signatureHash;
    }

    // ------------------------------------------------------------------ events

    /// @notice `signer` signed the document `docHash`.
    event Registered(bytes32 indexed docHash, address indexed signer, bytes32 metadataHash, bytes32 supersedes);

    /// @notice `signer` withdrew their signature of `docHash`, whether it was registered or Merkle-anchored.
    event Revoked(bytes32 indexed docHash, address indexed signer);

    /// @notice `sender` anchored `root`, the Merkle root of `leafCount` signed registrations.
    event RootAnchored(bytes32 indexed root, uint256 leafCount, address indexed sender);

    // ------------------------------------------------------------------ external

    /**
     * @notice Records `reg` signed by `reg.signer`. Anyone may call it (relayer).
     * @dev Re-registering an existing (docHash, signer) is a no-op that returns false, even after a
     * revocation: a revoked signature cannot be brought back by replaying it.
     * @param reg The signed message.
     * @param signature 65-byte ECDSA signature, or any bytes the ERC-1271 wallet `reg.signer` accepts.
     * @return recorded True when a new record was written.
     */
    function register(Registration calldata reg, bytes calldata signature) external returns (bool recorded);

    /**
     * @notice Records many ECDSA-signed registrations in one transaction; existing records are skipped.
     * @dev All-or-nothing: one invalid or expired entry reverts the batch with that entry's error.
     * @param regs The signed registrations, signatures in EIP-2098 compact form.
     * @return recorded How many new records were written.
     */
    function registerBatch(CompactSignedRegistration[] calldata regs) external returns (uint256 recorded);

    /**
     * @notice Revokes the caller's own signature of `docHash`.
     * @param docHash The document whose record (docHash, msg.sender) is revoked.
     */
    function revoke(bytes32 docHash) external;

    /**
     * @notice Revokes `signer`'s signature of `docHash` with an EIP-712 `Revocation` signed by `signer`;
     * anyone may relay it.
     * @param docHash The document.
     * @param signer The signer whose record is revoked.
     * @param nonce Must equal {nonces}(signer); consumed, so the signed revocation cannot be replayed.
     * @param deadline Unix time after which the signature can no longer be submitted.
     * @param signature Signature by `signer` over the `Revocation` message.
     */
    function revokeBySig(
        bytes32 docHash,
        address signer,
        uint256 nonce,
        uint256 deadline,
        bytes calldata signature
    ) external;

    /**
     * @notice Anchors `root`, the Merkle root of `leafCount` signed registrations. Anyone may call it (relayer).
     * @dev The registry cannot see the leaves: it records when the root was anchored, and
     * {verifyMerkleRegistration} checks each leaf's signature when it is read. `leafCount` is informative
     * (it goes into the event for indexers and explorers) and must not be zero.
     * @param root The tree's root (OpenZeppelin `StandardMerkleTree`, leaves as in {MerkleLeaf}).
     * @param leafCount How many leaves the tree holds.
     */
    function anchorRoot(bytes32 root, uint256 leafCount) external;

    /**
     * @notice Revokes a Merkle-anchored registration with the same EIP-712 `Revocation` {revokeBySig} takes.
     * @dev The revocation is stored per (docHash, signer) in the slot a direct record uses, so one revocation
     * withdraws the signature in both modes and a later {register} cannot bring it back. The proof shows that
     * the leaf was anchored, as {revokeBySig} requires a record: a `Revoked` event always follows a
     * registration the chain has seen.
     * @param root An anchored root.
     * @param leaf The anchored leaf's values.
     * @param proof The leaf's inclusion proof under `root`.
     * @param nonce Must equal {nonces}(leaf.signer); consumed.
     * @param deadline Unix time after which the signature can no longer be submitted.
     * @param signature Signature by `leaf.signer` over the `Revocation` message.
     */
    function revokeMerkleBySig(
        bytes32 root,
        MerkleLeaf calldata leaf,
        bytes32[] calldata proof,
        uint256 nonce,
        uint256 deadline,
        bytes calldata signature
    ) external;

    // ------------------------------------------------------------------ views

    /**
     * @notice The record of (`docHash`, `signer`); all zero when none exists.
     * @dev A Merkle-anchored registration has no record of its own, only its revocation: `registeredAt` zero
     * and `revokedAt` set once {revokeMerkleBySig} revoked it. {verifyMerkleRegistration} gives its anchoring.
     * @param docHash The document.
     * @param signer The signer.
     * @return The stored record.
     */
    function recordOf(bytes32 docHash, address signer) external view returns (Record memory);

    /**
     * @notice Whether `signature` is a valid signature of `reg` by `reg.signer` on this chain and contract.
     * @dev Does not look at the deadline or at existing records.
     * @param reg The message.
     * @param signature The signature to check.
     * @return True when valid.
     */
    function isValidRegistration(Registration calldata reg, bytes calldata signature) external view returns (bool);

    /**
     * @notice When `root` was anchored; all zero when it was not.
     * @param root The Merkle root.
     * @return The stored anchor.
     */
    function anchorOf(bytes32 root) external view returns (Anchor memory);

    /**
     * @notice Confirms a Merkle-anchored registration in one call: `reg` signed with `signature` is a leaf
     * of the anchored `root`, the signature is valid (ECDSA, or ERC-1271 for a contract wallet) and its
     * deadline had not passed when the root was anchored.
     * @dev Reverts with {RootNotAnchored}, {NotInTree}, {ExpiredSignature} or {InvalidSignature}. A revocation
     * does not revert: it shows in `revokedAt`. An ERC-1271 wallet is asked at the time of the call.
     * @param root The anchored root.
     * @param reg The signed message.
     * @param signature The signature, whose keccak256 is the leaf's `signatureHash`.
     * @param proof The leaf's inclusion proof (OpenZeppelin `MerkleProof`, sorted pairs).
     * @return record `registeredAt` and `blockNumber` are the root's anchoring; `revokedAt` the revocation of
     * (`reg.docHash`, `reg.signer`), zero while valid.
     */
    function verifyMerkleRegistration(
        bytes32 root,
        Registration calldata reg,
        bytes calldata signature,
        bytes32[] calldata proof
    ) external view returns (Record memory record);

    /**
     * @notice The Merkle leaf of `leaf`'s values, for off-chain tree builders to check themselves against.
     * @param leaf The values.
     * @return The double-hashed leaf (see {MerkleLeaf}).
     */
    function leafHash(MerkleLeaf calldata leaf) external pure returns (bytes32);

    /**
     * @notice The EIP-712 digest a signer signs for `reg`, for off-chain code to check itself against.
     * @param reg The message.
     * @return The digest `keccak256("\x19\x01" ‖ domainSeparator ‖ hashStruct(reg))`.
     */
    function registrationDigest(Registration calldata reg) external view returns (bytes32);

    /**
     * @notice The EIP-712 domain separator of this registry (binds name, version, chain id, address).
     * @return The domain separator.
     */
    // solhint-disable-next-line func-name-mixedcase
    function DOMAIN_SEPARATOR() external view returns (bytes32);
}
