// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @notice The network's reward token: a fixed supply minted once, to the treasury, at deployment.
/// Contributors are paid from the treasury through the RewardsDistributor; buyers pay the treasury through Payments.
contract RewardToken is ERC20 {
    constructor(address treasury, uint256 supply) ERC20("DePIN Reward", "DPR") {
        _mint(treasury, supply);
    }
}
