using System.Diagnostics;
using PumpFleet.Gateway.Hubs;

namespace PumpFleet.Gateway.Tests;

/// <summary>Our <c>$7$</c> hashes and mosquitto's own tool agree (the broker accepting ours is ExternalIdentityTests).</summary>
public sealed class BrokerSecretHasherTests
{
    [Fact]
    public async Task HashWrittenByMosquittoPasswd_IsVerified_AndAWrongSecretIsNot()
    {
        const string Tool = "/usr/bin/mosquitto_passwd";
        Assert.True(File.Exists(Tool), $"{Tool} is missing: install mosquitto (the test script does).");
        var file = Path.Combine(Directory.CreateTempSubdirectory("pumpfleet-passwd-").FullName, "passwd");
        using (var p = Process.Start(new ProcessStartInfo(Tool, ["-c", "-b", file, "bedside-07", "a-long-secret-0123456789"]) { UseShellExecute = false })!)
        {
            await p.WaitForExitAsync(TestContext.Current.CancellationToken);
            Assert.Equal(0, p.ExitCode);
        }

        var hash = (await File.ReadAllTextAsync(file, TestContext.Current.CancellationToken)).Trim().Split(':', 2)[1];
        Assert.StartsWith("$7$", hash, StringComparison.Ordinal);
        Assert.True(BrokerSecretHasher.Verify("a-long-secret-0123456789", hash));
        Assert.False(BrokerSecretHasher.Verify("a-long-secret-0123456780", hash));
        Directory.Delete(Path.GetDirectoryName(file)!, recursive: true);
    }

    [Fact]
    public void OwnHash_HasMosquittosShape_AndVerifies()
    {
        var hash = BrokerSecretHasher.Hash("another-secret-0123456789", 1000);
        var parts = hash.Split('$');
        Assert.Equal(["", "7", "1000"], parts[..3]);
        Assert.Equal(12, Convert.FromBase64String(parts[3]).Length);
        Assert.Equal(64, Convert.FromBase64String(parts[4]).Length);
        Assert.True(BrokerSecretHasher.Verify("another-secret-0123456789", hash));
        Assert.False(BrokerSecretHasher.Verify("another-secret-012345678", hash));
        Assert.False(BrokerSecretHasher.Verify("another-secret-0123456789", "$6$abc$def"));
    }
}
