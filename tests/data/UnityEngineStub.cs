// The few UnityEngine members examples/unity/EmotrackClient.cs uses, so that tests can compile it with Mono's mcs
// without Unity. Signatures follow Unity's scripting API; the bodies do only what a compile (and a console run of
// tests/data/EmotrackClientCheck.cs) needs. JsonUtility here is a small reflection-based reader of flat and nested
// objects, enough for emotrack's messages; Unity's own is used in a real project.
using System;
using System.Collections.Generic;
using System.Globalization;
using System.Reflection;
using System.Text;

namespace UnityEngine
{
    public class Object { }

    public class Component : Object { }

    public class Behaviour : Component
    {
        public bool enabled = true;
    }

    public class MonoBehaviour : Behaviour { }

    [AttributeUsage(AttributeTargets.Field)]
    public sealed class SerializeField : Attribute { }

    [AttributeUsage(AttributeTargets.Field)]
    public sealed class TooltipAttribute : Attribute
    {
        public readonly string tooltip;
        public TooltipAttribute(string tooltip) { this.tooltip = tooltip; }
    }

    public static class Debug
    {
        public static void Log(object message) { Console.WriteLine(message); }
        public static void LogWarning(object message) { Console.Error.WriteLine(message); }
        public static void LogError(object message) { Console.Error.WriteLine(message); }
    }

    public static class Time
    {
        public static float deltaTime = 1f / 60f;
        public static float time;
    }

    public static class Mathf
    {
        public static float Exp(float power) { return (float)Math.Exp(power); }
        public static float Min(float a, float b) { return a < b ? a : b; }
        public static float Max(float a, float b) { return a > b ? a : b; }
        public static int Clamp(int value, int min, int max) { return value < min ? min : value > max ? max : value; }
        public static float Clamp(float value, float min, float max) { return value < min ? min : value > max ? max : value; }
        public static float Lerp(float a, float b, float t) { return a + (b - a) * Clamp(t, 0f, 1f); }
    }

    public static class JsonUtility
    {
        public static T FromJson<T>(string json)
        {
            int i = 0;
            return (T)Read(json, ref i, typeof(T));
        }

        static void Skip(string s, ref int i) { while (i < s.Length && char.IsWhiteSpace(s[i])) i++; }

        // Reads one JSON value; objects fill the public fields of `type` that match their keys (others are skipped,
        // as Unity's JsonUtility does), anything else is converted to the field's type.
        static object Read(string s, ref int i, Type type)
        {
            Skip(s, ref i);
            char c = s[i];
            if (c == '{')
            {
                object target = type != null && type != typeof(object) ? Activator.CreateInstance(type) : null;
                i++;
                Skip(s, ref i);
                if (s[i] == '}') { i++; return target; }
                while (true)
                {
                    Skip(s, ref i);
                    string key = (string)Read(s, ref i, typeof(string));
                    Skip(s, ref i);
                    i++; // ':'
                    FieldInfo field = target == null ? null : type.GetField(key, BindingFlags.Public | BindingFlags.Instance);
                    object value = Read(s, ref i, field == null ? null : field.FieldType);
                    if (field != null && value != null) field.SetValue(target, value);
                    Skip(s, ref i);
                    if (s[i++] == '}') return target;
                }
            }
            if (c == '[')
            {
                i++;
                Skip(s, ref i);
                if (s[i] == ']') { i++; return null; }
                while (true)
                {
                    Read(s, ref i, null);
                    Skip(s, ref i);
                    if (s[i++] == ']') return null;
                }
            }
            if (c == '"')
            {
                var text = new StringBuilder();
                for (i++; s[i] != '"'; i++)
                {
                    if (s[i] == '\\')
                    {
                        i++;
                        char e = s[i];
                        if (e == 'u') { text.Append((char)Convert.ToInt32(s.Substring(i + 1, 4), 16)); i += 4; }
                        else text.Append(e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : e == 'b' ? '\b' : e == 'f' ? '\f' : e);
                    }
                    else text.Append(s[i]);
                }
                i++;
                return text.ToString();
            }
            int start = i;
            while (i < s.Length && ",}] \t\r\n".IndexOf(s[i]) < 0) i++;
            string word = s.Substring(start, i - start);
            if (word == "null" || type == null) return null;
            if (type == typeof(bool)) return word == "true";
            return Convert.ChangeType(double.Parse(word, CultureInfo.InvariantCulture), type, CultureInfo.InvariantCulture);
        }
    }
}
