// EmotrackClient.cs: receive emotrack's valence and arousal in Unity over WebSocket.
//
// Drop this file into Assets/, add the component to any GameObject and read `Valence`, `Arousal` (smoothed here,
// every frame, in [-1, 1]) and `NoMusic` from your own scripts. No packages needed: the socket is .NET's
// System.Net.WebSockets.ClientWebSocket and the JSON goes through Unity's JsonUtility.
//
// emotrack sends a "hello" on connect, then the run's "history", then one "emotion" message per 0.5 s hop, and a
// "marker" whenever someone marks a moment. The message classes below mirror emotrack/realtime/messages.py
// (`to_json`, `hello_json`) and markers.py field for field; tests/test_examples.py checks that they still do.

using System;
using System.Collections.Concurrent;
using System.IO;
using System.Net.WebSockets;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using UnityEngine;

namespace Emotrack
{
    /// <summary>Just the envelope, to see which kind of message arrived.</summary>
    [Serializable]
    public class Envelope
    {
        public string type;
        public int version;
    }

    /// <summary>The model's values before smoothing.</summary>
    [Serializable]
    public class RawValues
    {
        public float valence;
        public float arousal;
    }

    /// <summary>Milliseconds per stage of one hop, from its last audio sample to the message.</summary>
    [Serializable]
    public class LatencyMs
    {
        public float capture;
        public float features;
        public float inference;
        public float smoothing;
        public float total;
    }

    /// <summary>One hop (every 0.5 s). Values in [-1, 1]; quadrant 0 and active false mean "no music".</summary>
    [Serializable]
    public class EmotionMessage
    {
        public string type;
        public string stream;  // only when emotrack tracks several streams (--per-channel, --url); else null
        public int version;
        public int seq;
        public double stream_time;
        public double wall_time;
        public float valence;
        public float arousal;
        public RawValues raw;
        public int quadrant;
        public bool active;
        public float confidence;
        public string model;
        public LatencyMs latency_ms;
        public long dropped_samples;
    }

    /// <summary>Sent once on connect: what the stream is.</summary>
    [Serializable]
    public class HelloMessage
    {
        public string type;
        public int version;
        public string model;
        public float hop_s;
        public int sample_rate;
        public string smoothing;
        public string range;
        public string confidence;
        public string run_id;
        public double started;
    }

    /// <summary>A moment someone marked (terminal, dashboard, OSC or a WebSocket client).</summary>
    [Serializable]
    public class MarkerMessage
    {
        public string type;
        public int version;
        public int id;
        public string label;
        public double wall_time;
        public double stream_time;
        public string source;
    }

    public class EmotrackClient : MonoBehaviour
    {
        [Tooltip("Machine running `emotrack run` (127.0.0.1: this one; a LAN address needs --ws-host 0.0.0.0).")]
        [SerializeField] private string host = "127.0.0.1";

        [Tooltip("emotrack's --ws-port.")]
        [SerializeField] private int port = 8765;

        [Tooltip("The token emotrack prints when it serves the LAN (empty on loopback).")]
        [SerializeField] private string token = "";

        [Tooltip("With several streams (--per-channel, --url): the one to follow (?stream=NAME); empty: the first heard.")]
        [SerializeField] private string stream = "";

        [Tooltip("wss:// instead of ws:// (emotrack run --ws-cert/--ws-key).")]
        [SerializeField] private bool secure = false;

        [Tooltip("Seconds for the exponential smoothing in Update(): emotrack's values step at 2 Hz, this glides.")]
        [SerializeField] private float smoothingSeconds = 0.5f;

        [Tooltip("Longest wait between reconnection attempts; the wait doubles from 0.5 s up to this.")]
        [SerializeField] private float maxRetrySeconds = 10f;

        /// <summary>Quadrant words as emotrack shows them (messages.py QUADRANT_NAMES).</summary>
        public static readonly string[] QuadrantNames =
            { "no music", "happy / energetic", "tense / agitated", "sad / low", "calm / relaxed" };

        /// <summary>Smoothed valence in [-1, 1], updated every frame; glides to 0 while there is no music.</summary>
        public float Valence { get; private set; }

        /// <summary>Smoothed arousal in [-1, 1], updated every frame; glides to 0 while there is no music.</summary>
        public float Arousal { get; private set; }

        /// <summary>1..4 while music is heard, 0 for no music (and while disconnected).</summary>
        public int Quadrant { get; private set; }

        /// <summary>0..1: how sure emotrack is that it hears music.</summary>
        public float Confidence { get; private set; }

        /// <summary>True for silence, noise or speech (quadrant 0 / active false), and while disconnected.</summary>
        public bool NoMusic { get; private set; } = true;

        public string QuadrantName => QuadrantNames[NoMusic ? 0 : Mathf.Clamp(Quadrant, 0, 4)];

        public bool Connected => connected;

        /// <summary>The last hop as received, or null before the first.</summary>
        public EmotionMessage Latest { get; private set; }

        /// <summary>What the server said on connect, or null.</summary>
        public HelloMessage Hello { get; private set; }

        /// <summary>Raised on the main thread for every hop and every marker.</summary>
        public event Action<EmotionMessage> EmotionReceived;
        public event Action<MarkerMessage> MarkerReceived;

        private readonly ConcurrentQueue<string> inbox = new ConcurrentQueue<string>();
        private CancellationTokenSource cancel;
        private volatile bool connected;
        private float targetValence, targetArousal;
        private string following;  // the stream whose hops are shown, when messages name one

        private Uri ServerUri
        {
            get
            {
                string query = string.IsNullOrEmpty(token) ? "" : "&token=" + Uri.EscapeDataString(token);
                if (!string.IsNullOrEmpty(stream)) query += "&stream=" + Uri.EscapeDataString(stream);
                if (query.Length > 0) query = "?" + query.Substring(1);
                return new Uri((secure ? "wss" : "ws") + "://" + host + ":" + port + "/" + query);
            }
        }

        private void OnEnable()
        {
            cancel = new CancellationTokenSource();
            following = string.IsNullOrEmpty(stream) ? null : stream;
            Task.Run(() => RunAsync(ServerUri, cancel.Token));
        }

        private void OnDisable()
        {
            if (cancel != null)
            {
                cancel.Cancel();
                cancel = null;
            }
        }

        /// <summary>Connect, read until the connection ends, wait (0.5 s doubling up to maxRetrySeconds), repeat.</summary>
        private async Task RunAsync(Uri uri, CancellationToken stop)
        {
            float wait = 0.5f;
            while (!stop.IsCancellationRequested)
            {
                using (var socket = new ClientWebSocket())
                {
                    try
                    {
                        await socket.ConnectAsync(uri, stop);
                        connected = true;
                        wait = 0.5f;
                        await ReceiveAsync(socket, stop);
                    }
                    catch (OperationCanceledException)
                    {
                        break;
                    }
                    catch (Exception e)
                    {
                        Debug.LogWarning("emotrack: " + uri + ": " + e.Message + "; retrying in " + wait + " s");
                    }
                    finally
                    {
                        connected = false;
                    }
                }
                try
                {
                    await Task.Delay(TimeSpan.FromSeconds(wait), stop);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
                wait = Mathf.Min(wait * 2f, maxRetrySeconds);
            }
        }

        /// <summary>Queue each complete text message for Update(); messages may span several frames.</summary>
        private async Task ReceiveAsync(ClientWebSocket socket, CancellationToken stop)
        {
            var buffer = new ArraySegment<byte>(new byte[16384]);
            var message = new MemoryStream();
            while (socket.State == WebSocketState.Open)
            {
                WebSocketReceiveResult result = await socket.ReceiveAsync(buffer, stop);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    return;
                }
                message.Write(buffer.Array, 0, result.Count);
                if (result.EndOfMessage)
                {
                    if (result.MessageType == WebSocketMessageType.Text)
                    {
                        inbox.Enqueue(Encoding.UTF8.GetString(message.ToArray()));
                    }
                    message.SetLength(0);
                }
            }
        }

        /// <summary>Handle what arrived since the last frame, then move the smoothed values towards the latest.</summary>
        private void Update()
        {
            string text;
            while (inbox.TryDequeue(out text))
            {
                Handle(text);
            }
            if (!connected)
            {
                NoMusic = true;
                Quadrant = 0;
                targetValence = targetArousal = 0f;
            }
            float k = smoothingSeconds > 0f ? 1f - Mathf.Exp(-Time.deltaTime / smoothingSeconds) : 1f;
            Valence += (targetValence - Valence) * k;
            Arousal += (targetArousal - Arousal) * k;
        }

        /// <summary>One message: "emotion" sets the targets, "hello" and "marker" are kept or passed on.</summary>
        public void Handle(string text)
        {
            Envelope envelope = JsonUtility.FromJson<Envelope>(text);
            if (envelope == null)
            {
                return;
            }
            switch (envelope.type)
            {
                case "emotion":
                    EmotionMessage hop = JsonUtility.FromJson<EmotionMessage>(text);
                    if (!string.IsNullOrEmpty(hop.stream))
                    {
                        if (following == null) following = hop.stream;
                        else if (hop.stream != following) break;  // another stream's hop: don't mix them
                    }
                    Latest = hop;
                    NoMusic = !hop.active || hop.quadrant == 0;
                    Quadrant = NoMusic ? 0 : hop.quadrant;
                    Confidence = hop.confidence;
                    // No music: head for the centre whatever the smoother upstream does (--smoothing none included).
                    targetValence = NoMusic ? 0f : hop.valence;
                    targetArousal = NoMusic ? 0f : hop.arousal;
                    if (EmotionReceived != null) EmotionReceived(hop);
                    break;
                case "hello":
                    Hello = JsonUtility.FromJson<HelloMessage>(text);
                    Debug.Log("emotrack: connected to " + Hello.model + ", a message every " + Hello.hop_s + " s");
                    break;
                case "marker":
                    MarkerMessage marker = JsonUtility.FromJson<MarkerMessage>(text);
                    if (MarkerReceived != null) MarkerReceived(marker);
                    break;
                case "history":
                    // The run so far (arrays of past values), for dashboards; a live visual only needs what follows.
                    break;
                default:
                    Debug.Log("emotrack: " + text);  // "pong" or "error" replies to what a client sent
                    break;
            }
        }
    }
}
