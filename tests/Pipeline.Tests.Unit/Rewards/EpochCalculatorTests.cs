using System.Numerics;
using Pipeline.Core.Crypto;
using Pipeline.Core.Envelope;
using Pipeline.Rewards.Epochs;
using static Pipeline.Tests.Unit.Rewards.EpochScenario;

namespace Pipeline.Tests.Unit.Rewards;

/// <summary>The epoch calculation under the default policy (rewards/policies/v1.json) and variations of it.</summary>
public sealed class EpochCalculatorTests
{
    private static readonly Dictionary<string, long> None = [];

    [Fact]
    public void Calculate_HonestDevices_ShareTheEmissionByScoreAndTheTreasuryKeepsOnlyTheFloors()
    {
        var rewards = new EpochScenario()
            .Device("car-1", "alice", accepted: 3000)
            .Device("car-2", "bob", accepted: 1500, uptimePpm: 500_000)
            .Calculate();

        var first = DeviceOf(rewards, "car-1");
        var second = DeviceOf(rewards, "car-2");
        Assert.Equal(1_000_000, first.QualityPpm);
        Assert.Equal((BigInteger)3000 * 1_000_000 * 1_000_000 * 1_000_000, first.Score);
        // Quality = (2·uptime + 2·completeness + timeliness) / 5 = (1.0 + 2.0 + 1.0) / 5 = 0.8.
        Assert.Equal(800_000, second.QualityPpm);
        Assert.True(first.Amount > 0 && second.Amount > 0);
        Assert.Equal(first.Amount * 1500 * 800_000 / (3000L * 1_000_000), second.Amount, new WithinOneUnit());
        Assert.InRange(rewards.Treasury, BigInteger.Zero, 2);
        Assert.Equal(rewards.Emission, Total(rewards));
    }

    [Fact]
    public void Calculate_SpammerAboveTheVolumeCap_EarnsWhatADeviceExactlyAtTheCapEarns()
    {
        var rewards = new EpochScenario()
            .Device("spammer", "mallory", accepted: 50_000)
            .Device("at-cap", "alice", accepted: 3600)
            .Device("honest", "bob", accepted: 3000)
            .Calculate();

        Assert.Equal(3600, DeviceOf(rewards, "spammer").CappedVolume);
        Assert.Equal(DeviceOf(rewards, "at-cap").Amount, DeviceOf(rewards, "spammer").Amount);
        Assert.True(DeviceOf(rewards, "spammer").Amount < DeviceOf(rewards, "honest").Amount * 13 / 10);
    }

    [Fact]
    public void Calculate_ReplayerWithStaleReadings_IsPenalisedPerRejectionAndLosesTimeliness()
    {
        var rewards = new EpochScenario()
            .Device("honest", "alice")
            .Device("replayer", "mallory", rejections: new() { ["stale"] = 40 })
            .Device("flood-replayer", "mallory", rejections: new() { ["stale"] = 5000 })
            .Calculate();

        var replayer = DeviceOf(rewards, "replayer");
        Assert.Equal(400_000, replayer.PenaltyPpm);
        Assert.Equal(3000L * 1_000_000 / 3040, replayer.TimelinessPpm);
        Assert.True(replayer.Amount < DeviceOf(rewards, "honest").Amount * 6 / 10);
        Assert.Equal(1_000_000, DeviceOf(rewards, "flood-replayer").PenaltyPpm);
        Assert.Equal(BigInteger.Zero, DeviceOf(rewards, "flood-replayer").Amount);
    }

    [Fact]
    public void Calculate_Equivocator_IsZeroedByDefaultAndPenalisedPerConflictWhenThePolicySaysSo()
    {
        var scenario = new EpochScenario()
            .Device("honest", "alice")
            .Device("equivocator", "mallory", rejections: new() { ["seq_conflict"] = 1 });

        var zeroing = scenario.Calculate();
        Assert.True(DeviceOf(zeroing, "equivocator").Equivocated);
        Assert.Equal(BigInteger.Zero, DeviceOf(zeroing, "equivocator").Amount);
        Assert.Equal(BigInteger.Zero, ContributorOf(zeroing, "mallory").CumulativeAmount);

        var lenient = scenario.Calculate(DefaultPolicy with { EquivocationZeroesDevice = false });
        var equivocator = DeviceOf(lenient, "equivocator");
        Assert.Equal(100_000, equivocator.PenaltyPpm);
        Assert.Equal(DeviceOf(lenient, "honest").Amount * 9 / 10, equivocator.Amount, new WithinOneUnit());
    }

    [Fact]
    public void Calculate_Teleporter_LosesFivePercentPerTeleportUnderTheDefaultPolicy()
    {
        var rewards = new EpochScenario()
            .Device("honest", "alice")
            .Device("teleporter", "mallory", rejections: new() { ["teleport"] = 6 })
            .Calculate();

        Assert.Equal(300_000, DeviceOf(rewards, "teleporter").PenaltyPpm);
        Assert.Equal(DeviceOf(rewards, "honest").Amount * 7 / 10, DeviceOf(rewards, "teleporter").Amount, new WithinOneUnit());
    }

    [Fact]
    public void Calculate_RejectionsAStrangerCanCause_CostTheDeviceNothing()
    {
        // Anyone can post a reading that names a device and is signed by another key or not at all.
        var rewards = new EpochScenario()
            .Device("honest", "alice")
            .Device("framed", "bob", rejections: new() { ["signer_mismatch"] = 100_000, ["bad_signature"] = 100_000, ["malformed"] = 5 })
            .Calculate();

        Assert.Equal(0, DeviceOf(rewards, "framed").PenaltyPpm);
        Assert.Equal(DeviceOf(rewards, "honest").Amount, DeviceOf(rewards, "framed").Amount);
    }

    [Fact]
    public void Calculate_StationDisagreeingWithItsNeighbours_EarnsLessAndALoneStationIsNotJudged()
    {
        // Four stations within ~10 km near Boulder; one reports 9 °C warmer. One more 300 km away has no neighbours.
        var rewards = new EpochScenario()
            .Station("ws-1", "alice", 40.0150, -105.2705, 21_000, 40_000)
            .Station("ws-2", "bob", 40.0500, -105.2000, 21_800, 42_500)
            .Station("ws-3", "carol", 39.9900, -105.2500, 20_400, 38_000)
            .Station("ws-off", "mallory", 40.0300, -105.2300, 30_000, 41_000)
            .Station("ws-far", "dave", 42.8000, -105.2705, -5_000, 90_000)
            .Calculate();

        Assert.Equal(1_000_000, DeviceOf(rewards, "ws-1").AgreementPpm);
        Assert.Equal(1_000_000, DeviceOf(rewards, "ws-3").AgreementPpm);
        Assert.Equal(500_000, DeviceOf(rewards, "ws-off").AgreementPpm);
        Assert.Equal(1_000_000, DeviceOf(rewards, "ws-far").AgreementPpm);
        Assert.Equal(DeviceOf(rewards, "ws-1").Amount / 2, DeviceOf(rewards, "ws-off").Amount, new WithinOneUnit());
    }

    [Fact]
    public void Calculate_PolicyThatDistrustsLoneStations_GivesAStationWithoutNeighboursItsUnjudgedAgreement()
    {
        var policy = DefaultPolicy with { Agreement = DefaultPolicy.Agreement with { UnjudgedPpm = 250_000 } };
        var rewards = new EpochScenario()
            .Station("ws-1", "alice", 40.0150, -105.2705, 21_000, 40_000)
            .Station("ws-2", "bob", 40.0500, -105.2000, 21_800, 42_500)
            .Station("ws-3", "carol", 39.9900, -105.2500, 20_400, 38_000)
            .Station("ws-far", "dave", 42.8000, -105.2705, -5_000, 90_000)
            .Calculate(policy);

        Assert.Equal(1_000_000, DeviceOf(rewards, "ws-1").AgreementPpm);
        Assert.Equal(250_000, DeviceOf(rewards, "ws-far").AgreementPpm);
    }

    [Fact]
    public void Calculate_Sales_ArePaidByCreditsAtThePolicysShareEvenToADeviceWithoutScore()
    {
        var rewards = new EpochScenario()
            .Device("car-1", "alice")
            .Device("equivocator", "mallory", rejections: new() { ["seq_conflict"] = 2 })
            .Sold("car-1", rows: 100, credits: 1)
            .Sold("equivocator", rows: 300, credits: 2)
            .Calculate();

        // 3 credits × 0.01 token × 70 %.
        Assert.Equal(BigInteger.Parse("21000000000000000"), rewards.SalesShare);
        Assert.Equal(BigInteger.Parse("7000000000000000"), DeviceOf(rewards, "car-1").SalesAmount);
        Assert.Equal(BigInteger.Parse("14000000000000000"), DeviceOf(rewards, "equivocator").SalesAmount);
        Assert.Equal(BigInteger.Zero, DeviceOf(rewards, "equivocator").EmissionAmount);
        Assert.Equal(rewards.Emission + rewards.SalesShare, Total(rewards));
    }

    [Fact]
    public void Calculate_RandomEpochs_PayoutsPlusTreasuryEqualEmissionPlusSalesShareExactly()
    {
        for (var seed = 0; seed < 300; seed++)
        {
            var random = new Random(seed);
            var policy = DefaultPolicy with
            {
                EmissionPerEpoch = random.Next(4) switch
                {
                    0 => 0,
                    1 => random.Next(1, 1000),
                    2 => BigInteger.Parse("1000000000000000000000") + random.Next(),
                    _ => (BigInteger.One << 200) + random.NextInt64(),
                },
                Sales = new SalesShare(random.Next(0, 1_000_001), random.Next(3) == 0 ? 1 : BigInteger.Pow(10, 16) + random.Next()),
            };
            var scenario = RandomScenario(random);
            var rewards = scenario.Calculate(policy);

            Assert.Equal(policy.EmissionPerEpoch + rewards.SalesShare, Total(rewards));
            Assert.True(rewards.Treasury.Sign >= 0, $"seed {seed}: treasury {rewards.Treasury}");
            Assert.All(rewards.Devices, d => Assert.True(d.EmissionAmount.Sign >= 0 && d.SalesAmount.Sign >= 0));
            // Each floor leaves less than one base unit per device, of the emission and of the sales share.
            if (!rewards.TotalScore.IsZero && rewards.Devices.Any(d => d.SoldCredits > 0))
                Assert.True(rewards.Treasury < 2 * rewards.Devices.Count, $"seed {seed}: treasury {rewards.Treasury} for {rewards.Devices.Count} devices");
            Assert.Equal(rewards.Devices.Aggregate(BigInteger.Zero, (s, d) => s + d.Amount), rewards.Contributors.Aggregate(BigInteger.Zero, (s, c) => s + c.Amount));
        }
    }

    [Fact]
    public void Calculate_InputsInAnyOrder_GiveTheSameRewardsByteForByte()
    {
        for (var seed = 0; seed < 50; seed++)
        {
            var inputs = RandomScenario(new Random(seed)).Inputs;
            var random = new Random(seed + 1000);
            var shuffled = inputs with
            {
                Devices = [.. inputs.Devices.OrderBy(_ => random.Next()).Select(d => d with { RejectionsByReason = d.RejectionsByReason.Reverse().ToDictionary() })],
                Stations = [.. inputs.Stations.OrderBy(_ => random.Next())],
                Owners = [.. inputs.Owners.OrderBy(_ => random.Next())],
                Sales = [.. inputs.Sales.OrderBy(_ => random.Next())],
            };
            var previous = inputs.Owners.Select(o => o.Owner).Distinct().Select((owner, i) => (owner, i)).ToDictionary(p => p.owner, p => (BigInteger)p.i * 1000);
            var reversedPrevious = previous.Reverse().ToDictionary();

            var one = EpochCalculator.Calculate(DefaultPolicy, inputs, previous);
            var other = EpochCalculator.Calculate(DefaultPolicy, shuffled, reversedPrevious);

            Assert.Equal(CanonicalJson.Serialize(one), CanonicalJson.Serialize(other));
            Assert.Equal(inputs.Hash(), shuffled.Hash());
        }
    }

    [Fact]
    public void Calculate_SeveralEpochs_CumulativeAmountsAddUpAndEveryEarlierContributorStaysInTheTree()
    {
        var previous = new Dictionary<EthAddress, BigInteger>();
        var earned = new Dictionary<EthAddress, BigInteger>();
        for (var epoch = 1; epoch <= 3; epoch++)
        {
            var scenario = new EpochScenario(epoch).Device("car-1", "alice", accepted: 1000 * epoch);
            if (epoch < 3) scenario.Device("car-2", "bob");
            var rewards = scenario.Calculate(previous: previous);

            foreach (var c in rewards.Contributors) earned[c.Account] = earned.GetValueOrDefault(c.Account) + c.Amount;
            Assert.All(rewards.Contributors, c => Assert.Equal(earned[c.Account], c.CumulativeAmount));
            previous = rewards.Contributors.ToDictionary(c => c.Account, c => c.CumulativeAmount);
        }
        Assert.Equal(BigInteger.Parse("3000000000000000000000"), previous.Values.Aggregate(BigInteger.Zero, (s, v) => s + v), new WithinOneUnit(3));
        Assert.True(previous[Address("bob")] > 0);
    }

    [Fact]
    public void Calculate_DeviceTransferredBetweenEpochs_PaysWhoeverOwnsItAtEachEpochsEnd()
    {
        var first = new EpochScenario(1).Device("car", "alice").Device("other", "carol").Calculate();
        var previous = first.Contributors.ToDictionary(c => c.Account, c => c.CumulativeAmount);
        // Alice sold the car during epoch 2: the registry says Bob owns it at the epoch's end.
        var second = new EpochScenario(2).Device("car", "bob").Device("other", "carol").Calculate(previous: previous);

        Assert.Equal(Address("bob"), DeviceOf(second, "car").Owner);
        Assert.Equal(DeviceOf(second, "car").Amount, ContributorOf(second, "bob").CumulativeAmount);
        Assert.Equal(BigInteger.Zero, ContributorOf(second, "alice").Amount);
        Assert.Equal(ContributorOf(first, "alice").CumulativeAmount, ContributorOf(second, "alice").CumulativeAmount);
    }

    [Fact]
    public void Calculate_NoScoreAtAll_SendsTheWholeEmissionToTheTreasury()
    {
        var rewards = new EpochScenario().Device("silent", "alice", accepted: 0).Calculate();

        Assert.Equal(rewards.Emission, rewards.Treasury);
        Assert.Equal(BigInteger.Zero, ContributorOf(rewards, "alice").Amount);
    }

    [Fact]
    public void Calculate_InputsItCannotUse_NameEveryProblem()
    {
        var orphan = new DeviceEpochQuality(Address("orphan"), DeviceKind.Vehicle, 10, 0, 0, 0, 0, None);
        var negative = new DeviceEpochQuality(Address("negative"), DeviceKind.Vehicle, -1, 0, 2_000_000, 0, 0, None);
        var inputs = new EpochInputs(1, [orphan, negative, negative],
            [new StationEpochMeans(Address("ws"), 91_000_000, 0, new Dictionary<string, long>())],
            [new DeviceOwner(Address("negative"), Address("alice"))],
            [new DeviceSales(Address("nobody"), 1, 1)]);

        var error = Assert.Throws<EpochInputsException>(() => EpochCalculator.Calculate(DefaultPolicy, inputs, new Dictionary<EthAddress, BigInteger>()));

        Assert.Contains(error.Problems, p => p.Contains("appears more than once", StringComparison.Ordinal));
        Assert.Contains(error.Problems, p => p.Contains(Address("orphan").ToLowerHex() + " has no owner", StringComparison.Ordinal));
        Assert.Contains(error.Problems, p => p.Contains("count below 0", StringComparison.Ordinal));
        Assert.Contains(error.Problems, p => p.Contains("fraction outside", StringComparison.Ordinal));
        Assert.Contains(error.Problems, p => p.Contains("latitude", StringComparison.Ordinal));
        Assert.Contains(error.Problems, p => p.StartsWith("sales: " + Address("nobody").ToLowerHex(), StringComparison.Ordinal));
    }

    [Fact]
    public void FromLake_FractionsBecomeTheNearestWholePpm()
    {
        var row = DeviceEpochQuality.FromLake(Address("car"), DeviceKind.Vehicle, 59, 0, 59 / 60.0, 0.29, 0, None);

        Assert.Equal(983_333, row.UptimePpm);
        Assert.Equal(290_000, row.CompletenessPpm);
    }

    /// <summary>Up to 40 devices of up to 8 owners with random counts, rejections (of every reason), stations and sales.</summary>
    internal static EpochScenario RandomScenario(Random random)
    {
        var scenario = new EpochScenario(random.Next(1, 10_000));
        string[] reasons = [.. ReasonCodes.All.Select(r => r.ToWire())];
        var count = random.Next(0, 41);
        for (var i = 0; i < count; i++)
        {
            var name = $"device-{i}";
            var owner = $"owner-{random.Next(8)}";
            if (random.Next(4) == 0)
            {
                scenario.Station(name, owner, 40 + random.NextDouble() / 5, -105 + random.NextDouble() / 5, random.Next(15_000, 25_000), random.Next(30_000, 60_000));
            }
            else
            {
                var rejections = new Dictionary<string, long>();
                for (var r = random.Next(4); r > 0; r--) rejections[reasons[random.Next(reasons.Length)]] = random.Next(0, 30);
                scenario.Device(name, owner, accepted: random.Next(4) == 0 ? random.Next(0, 100_000) : random.Next(0, 4000),
                    uptimePpm: random.Next(0, 1_000_001), completenessPpm: random.Next(0, 1_000_001), rejections: rejections);
            }
            if (random.Next(3) == 0) scenario.Sold(name, random.Next(0, 10_000), random.Next(0, 500));
        }
        return scenario;
    }

    /// <summary>Amounts equal up to the floors: a difference of at most <paramref name="units"/> base units.</summary>
    private sealed class WithinOneUnit(int units = 1) : IEqualityComparer<BigInteger>
    {
        public bool Equals(BigInteger x, BigInteger y) => BigInteger.Abs(x - y) <= units;

        public int GetHashCode(BigInteger obj) => 0;
    }
}
