using Microsoft.Extensions.Options;

namespace PumpFleet.Streaming.Tests;

/// <summary>The provider's options are checked on start, and a failed read is retried soon, then less often.</summary>
public sealed class LogStreamOptionsTests
{
    [Fact]
    public void TheDefaults_AreValid()
    {
        Assert.True(new LogStreamOptionsValidator().Validate(null, new LogStreamOptions()).Succeeded);
    }

    [Theory]
    [InlineData(0, 5_000, "Streaming:ReadRetryDelay must be above 0")]
    [InlineData(6_000, 5_000, "Streaming:ReadRetryDelay must be above 0 and at most ReadRetryMaxDelay")]
    [InlineData(500, 600_000, "Streaming:ReadRetryMaxDelay must be at most 5 min")]
    public void ABadReadRetry_IsRefused_WithTheSettingNamed(int delayMs, int maxMs, string expected)
    {
        var result = new LogStreamOptionsValidator().Validate(null, new LogStreamOptions
        {
            ReadRetryDelay = TimeSpan.FromMilliseconds(delayMs),
            ReadRetryMaxDelay = TimeSpan.FromMilliseconds(maxMs),
        });

        Assert.True(result.Failed);
        Assert.Contains(result.Failures!, f => f.StartsWith(expected, StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(0, 5_000, 5_000, "Streaming:DeliveryRetryDelay must be above 0")]
    [InlineData(6_000, 5_000, 5_000, "Streaming:DeliveryRetryDelay must be above 0 and at most DeliveryRetryMaxDelay")]
    [InlineData(250, 120_000, 5_000, "Streaming:DeliveryRetryMaxDelay must be at most 1 min")]
    [InlineData(250, 5_000, -1, "Streaming:ClientDeliveryTimeout must be between 0 (off) and 5 min")]
    [InlineData(250, 5_000, 600_000, "Streaming:ClientDeliveryTimeout must be between 0 (off) and 5 min")]
    public void ABadDeliveryRetryOrClientTimeout_IsRefused_WithTheSettingNamed(int delayMs, int maxMs, int clientMs, string expected)
    {
        var result = new LogStreamOptionsValidator().Validate(null, new LogStreamOptions
        {
            DeliveryRetryDelay = TimeSpan.FromMilliseconds(delayMs),
            DeliveryRetryMaxDelay = TimeSpan.FromMilliseconds(maxMs),
            ClientDeliveryTimeout = TimeSpan.FromMilliseconds(clientMs),
        });

        Assert.True(result.Failed);
        Assert.Contains(result.Failures!, f => f.StartsWith(expected, StringComparison.Ordinal));
    }

    [Fact]
    public void AClientDeliveryTimeoutOfZero_IsValid_AndMeansOff()
    {
        Assert.True(new LogStreamOptionsValidator().Validate(null, new LogStreamOptions { ClientDeliveryTimeout = TimeSpan.Zero }).Succeeded);
    }

    [Fact]
    public void DeliveryRetries_StartAtTheDelay_Double_AndStopAtTheMaximum_WithAFifthOfJitter()
    {
        var backoff = new LogDeliveryRetryBackoff(Options.Create(new LogStreamOptions
        {
            DeliveryRetryDelay = TimeSpan.FromMilliseconds(250),
            DeliveryRetryMaxDelay = TimeSpan.FromSeconds(5),
        }));

        for (var i = 0; i < 50; i++)
        {
            Assert.InRange(backoff.Next(0), TimeSpan.FromMilliseconds(200), TimeSpan.FromMilliseconds(250));
            Assert.InRange(backoff.Next(2), TimeSpan.FromMilliseconds(800), TimeSpan.FromMilliseconds(1_000));
            Assert.InRange(backoff.Next(5), TimeSpan.FromMilliseconds(4_000), TimeSpan.FromMilliseconds(5_000));
            Assert.InRange(backoff.Next(int.MaxValue), TimeSpan.FromMilliseconds(4_000), TimeSpan.FromMilliseconds(5_000));
        }
    }

    [Fact]
    public void ReadRetries_StartAtTheDelay_Double_AndStopAtTheMaximum_WithAFifthOfJitter()
    {
        var backoff = new LogReadRetryBackoff(Options.Create(new LogStreamOptions
        {
            ReadRetryDelay = TimeSpan.FromMilliseconds(500),
            ReadRetryMaxDelay = TimeSpan.FromSeconds(5),
        }));

        for (var i = 0; i < 50; i++)
        {
            Assert.InRange(backoff.Next(0), TimeSpan.FromMilliseconds(400), TimeSpan.FromMilliseconds(500));
            Assert.InRange(backoff.Next(1), TimeSpan.FromMilliseconds(800), TimeSpan.FromMilliseconds(1_000));
            Assert.InRange(backoff.Next(3), TimeSpan.FromMilliseconds(3_200), TimeSpan.FromMilliseconds(4_000));
            Assert.InRange(backoff.Next(4), TimeSpan.FromMilliseconds(4_000), TimeSpan.FromMilliseconds(5_000));
            Assert.InRange(backoff.Next(int.MaxValue), TimeSpan.FromMilliseconds(4_000), TimeSpan.FromMilliseconds(5_000));
        }
    }
}
