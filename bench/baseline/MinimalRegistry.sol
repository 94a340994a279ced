// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @notice Bench baseline only: the least a relayed signed registry can do — EIP-712 ecrecover, one packed
/// storage slot, one event. No deadline, no ERC-1271, no idempotency. docchain's registry is measured against it.
contract MinimalRegistry {
    bytes32 private constant TYPEHASH = keccak256("Registration(bytes32 docHash,address signer)");
    bytes32 private immutable _separator = keccak256(
        abi.encode(keccak256("EIP712Domain(uint256 chainId,address verifyingContract)"), block.chainid, address(this))
    );
    mapping(bytes32 => mapping(address => uint256)) public records;

    event Registered(bytes32 indexed docHash, address indexed signer);

    function register(bytes32 docHash, address signer, uint8 v, bytes32 r, bytes32 s) external {
        bytes32 digest = keccak256(abi.encodePacked("\x19\x01", _separator, keccak256(abi.encode(TYPEHASH, docHash, signer))));
        require(ecrecover(digest, v, r, s) == signer, "bad signature");
        records[docHash][signer] = (block.timestamp << 64) | block.number;
        emit Registered(docHash, signer);
    }

    function separator() external view returns (bytes32) {
        return _separator;
    }
}
