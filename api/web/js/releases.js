// Every released DocumentRegistry, oldest first: keccak256 of its runtime code with its immutables (byte
// ranges) zeroed, as contracts/releases.json lists them and chain/trust.py reads them (a release's number
// is its place from 1). Made by `PYTHONPATH=. python tests/web/test_page_offline.py --vendor`; a test holds it equal.

export const MERKLE_RELEASE = 2;  // the first release that anchors Merkle roots (chain/trust.py)

export const RELEASES = [
  {
    "number": 1,
    "name": "DocumentRegistry 1 (docchain 0.1)",
    "maskedCodeHash": "0x6a662f55b42d6a840759dc0e039dc5de0219ae1ee3412da5199ccf74adb72b0e",
    "codeLength": 5272,
    "immutables": [
      [
        825,
        32
      ],
      [
        866,
        32
      ],
      [
        2468,
        32
      ],
      [
        2515,
        32
      ],
      [
        2594,
        32
      ],
      [
        2632,
        32
      ],
      [
        2704,
        32
      ]
    ]
  },
  {
    "number": 2,
    "name": "DocumentRegistry 2 (docchain 0.2: Merkle-root anchoring)",
    "maskedCodeHash": "0x4d0beddfe3b31026c120ba6a1a5f567e9d238e1c86a721ddbe643e8f89eca087",
    "codeLength": 7494,
    "immutables": [
      [
        2585,
        32
      ],
      [
        2626,
        32
      ],
      [
        4136,
        32
      ],
      [
        4183,
        32
      ],
      [
        4262,
        32
      ],
      [
        4300,
        32
      ],
      [
        4372,
        32
      ]
    ]
  }
];
