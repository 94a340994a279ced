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

    // ------------------------------------------------------------------ events

    /// @notice `signer` signed the document `docHash`.
    event Registered(bytes32 indexed docHash, address indexed signer, bytes32 metadataHash, bytes32 supersedes);

    /// @notice `signer` withdrew their signature of `docHash`.
    event Revoked(bytes32 indexed docHash, address indexed signer);

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

    // ------------------------------------------------------------------ views

    /**
     * @notice The record of (`docHash`, `signer`); all zero when none exists.
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
